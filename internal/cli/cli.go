// Package cli holds Vigil's command line: the cobra commands, their flags
// and the mapping from errors to exit codes. cmd/vigil only wires it to the
// process.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/vigil-sec/vigil/internal/version"
	"github.com/vigil-sec/vigil/scanner"
)

// Exit codes, as DESIGN.md sets them.
const (
	ExitPass       = 0 // the gate passed
	ExitGateFailed = 1 // the gate failed
	ExitUsage      = 2 // bad usage or bad input
	ExitScanFailed = 3 // the scan itself failed
)

// Stdio is where a command reads and writes.
type Stdio struct {
	In       io.Reader
	Out, Err io.Writer
}

// errGateFailed is returned by a command whose gate failed; its reasons
// have already been printed.
var errGateFailed = errors.New("the gate failed")

// Main runs the command line args and returns the process exit code.
func Main(ctx context.Context, args []string, stdio Stdio) int {
	root := newRoot(stdio)
	root.SetArgs(args)
	root.SetIn(stdio.In)
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitPass
	}
	code := exitCode(err)
	if code != ExitGateFailed {
		fmt.Fprintf(stdio.Err, "vigil: %s\n", scanner.UsageMessage(err)) // the exit code says it was a usage error
	}
	return code
}

func exitCode(err error) int {
	var usage *usageError
	switch {
	case errors.Is(err, errGateFailed):
		return ExitGateFailed
	case errors.Is(err, scanner.ErrUsage), errors.As(err, &usage):
		return ExitUsage
	}
	return ExitScanFailed
}

// usageError is a flag or argument error found by cobra.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func newRoot(stdio Stdio) *cobra.Command {
	root := &cobra.Command{
		Use:   "vigil",
		Short: "Vigil scans source trees, commits and container images and gates deploys on the result",
		Long: `Vigil runs SAST (gosec) and SBOM generation (syft) on a directory, a git commit
or a container image, writes SARIF, CycloneDX, SPDX and its own JSON, and
passes or fails the gate set by a policy.

Exit codes: 0 pass, 1 the gate failed, 2 bad usage or bad input,
3 the scan itself failed.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// --version prints what `vigil version` prints first: Vigil's
		// version (the engines' are in `vigil version`).
		Version: version.Vigil(),
	}
	root.SetVersionTemplate("vigil {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.AddCommand(newScanCmd(stdio), newGateCmd(stdio), newVersionCmd(stdio), newServeCmd(stdio), newMigrateCmd(stdio), newClientsCmd(stdio))
	root.AddCommand(newLicensingCmds(stdio)...)
	root.AddCommand(newWorkerCmd(stdio))
	root.AddCommand(newLicenseCmd(stdio))
	root.AddCommand(newProjectsCmd(stdio), newReleasesCmd(stdio), newBundlesCmd(stdio))
	root.AddCommand(newVerifyCmd(stdio), newKeysCmd(stdio))
	root.AddCommand(newTicketsCmd(stdio), newLinksCmd(stdio))
	root.AddCommand(newLoginCmd(stdio), newLogoutCmd(stdio))
	root.AddCommand(newScansCmd(stdio), newFindingsCmd(stdio), newWaiversCmd(stdio))
	// Unknown subcommands and bad arguments are usage errors too.
	for _, c := range root.Commands() {
		c.Args = wrapArgs(c.Args)
	}
	root.Args = cobra.ArbitraryArgs
	root.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return &usageError{fmt.Errorf("unknown command %q; run 'vigil --help' for the commands", args[0])}
		}
		return cmd.Help()
	}
	return root
}

func wrapArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	if check == nil {
		return nil
	}
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return &usageError{err}
		}
		return nil
	}
}

// isTerminal reports whether w is a terminal, for progress output.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
