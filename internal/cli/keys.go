package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/reports"
)

// purposeReports is the --purpose of the report-signing keys, the only
// key ring `vigil keys` manages so far.
const purposeReports = "reports"

func newKeysCmd(stdio Stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage the server's signing keys (report-signing keys)",
		Long: `Manage the keys the server signs with. --purpose reports: the ECDSA P-256
keys that sign audit report bundles, published without authentication at
/.well-known/vigil/report-keys (JWKS), /.well-known/vigil/report-keys.pem and
/.well-known/vigil/report-keys/{kid}.pem. The private keys are stored sealed
under the installation's seal key and never leave the server. Through a
server, the commands need a client with scope ` + server.ScopeReportsAdmin + `.

` + targetHelp,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newKeysRotateCmd(stdio), newKeysListCmd(stdio))
	for _, c := range cmd.Commands() {
		c.Args = wrapArgs(c.Args)
	}
	return cmd
}

// keysFlags are the flags of a keys command: the target and the purpose.
type keysFlags struct {
	target
	purpose string
}

func (f *keysFlags) register(cmd *cobra.Command) {
	f.target.register(cmd)
	cmd.Flags().StringVar(&f.purpose, "purpose", "", "which keys: reports (required)")
}

// checkPurpose refuses a --purpose other than reports.
func (f *keysFlags) checkPurpose() error {
	if f.purpose != purposeReports {
		return &usageError{fmt.Errorf("--purpose %q: want --purpose %s", f.purpose, purposeReports)}
	}
	return nil
}

// onKeyRing is an op's local half that needs the key ring.
func onKeyRing(fn func(ctx context.Context, ring *reports.KeyRing) (any, error)) func(context.Context, *local) (any, error) {
	return func(ctx context.Context, l *local) (any, error) {
		ring, err := l.keyRing()
		if err != nil {
			return nil, err
		}
		return fn(ctx, ring)
	}
}

func newKeysRotateCmd(stdio Stdio) *cobra.Command {
	var (
		f      keysFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "rotate --purpose reports",
		Short: "Make a new current signing key and print its key ID; older public keys keep verifying",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkPurpose(); err != nil {
				return err
			}
			out, err := f.run(cmd, stdio, op{
				scope: server.ScopeReportsAdmin, method: "POST", path: "/api/v1/report-keys/rotate",
				local: onKeyRing(func(ctx context.Context, ring *reports.KeyRing) (any, error) { return ring.Rotate(ctx) }),
			})
			if err != nil {
				return err
			}
			return printObject(stdio, out, asJSON, "key", func(k reports.KeyInfo) { fmt.Fprintln(stdio.Out, k.ID) })
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"kid", "current", "created_at"} as the API does`)
	return cmd
}

func newKeysListCmd(stdio Stdio) *cobra.Command {
	var (
		f      keysFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list --purpose reports",
		Short: "List the signing keys, the current one first, then the retired ones",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkPurpose(); err != nil {
				return err
			}
			all, err := f.runList(cmd, stdio, op{
				scope: server.ScopeReportsAdmin, method: "GET", path: "/api/v1/report-keys", items: "keys",
				local: onKeyRing(func(ctx context.Context, ring *reports.KeyRing) (any, error) { return ring.Keys(ctx) }),
			})
			if err != nil {
				return err
			}
			if asJSON {
				return printItems(stdio, "keys", all)
			}
			if len(all) == 0 {
				fmt.Fprintln(stdio.Err, "no report-signing key yet: one is made on first need, or by vigil keys rotate --purpose reports")
				return nil
			}
			tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY ID\tSTATUS\tCREATED\tRETIRED")
			for _, raw := range all {
				var k reports.KeyInfo
				if err := decode(raw, "key", &k); err != nil {
					return err
				}
				status, retired := "current", "-"
				if !k.Current && k.RetiredAt != nil {
					status, retired = "retired", k.RetiredAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.ID, status, k.CreatedAt.UTC().Format(time.RFC3339), retired)
			}
			return tw.Flush()
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"keys": [{"kid", "current", "created_at", "retired_at"}], "next_cursor": ""} as the API does`)
	return cmd
}
