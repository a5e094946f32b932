package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/scanner"
	"github.com/vigil-sec/vigil/scanner/engines"
	"github.com/vigil-sec/vigil/scanner/format"
	"github.com/vigil-sec/vigil/scanner/image"
	"github.com/vigil-sec/vigil/scanner/sbom"
	"github.com/vigil-sec/vigil/scanner/source"
)

// defaultPolicyFile is read from the target root when --policy is not set.
const defaultPolicyFile = ".vigil.yaml"

// scanFlags are the flags of `vigil scan`.
type scanFlags struct {
	engines  []string
	outputs  []string
	policy   string
	baseline string
	failOn   string
	commit   string
	insecure bool
	platform string
	quiet    bool
	parallel bool
}

// output is one -o FORMAT[=PATH].
type output struct {
	format format.Format
	path   string // "" is stdout
}

func newScanCmd(stdio Stdio) *cobra.Command {
	var f scanFlags
	cmd := &cobra.Command{
		Use:   "scan [flags] [TARGET]",
		Short: "Scan a directory, a git commit or a container image and gate on the result",
		Long: `Scan TARGET with every engine that applies (or those --engines names), write
the reports -o asks for, and pass or fail the gate.

TARGET is one of:
  DIR                      a directory (default ".")
  REPO --commit REV        a git repository (path or URL, file:// included),
                           checked out at REV into a temporary workspace
  HOST/REPO:TAG            a container image in a registry
  HOST/REPO@sha256:…       (anonymous, or credentials from the docker config)
  oci:DIR                  an OCI image layout
  archive:FILE             a "docker save" or OCI tarball

Output formats (-o FORMAT[=PATH], repeatable; stdout when no PATH):
  table (default), json, sarif, cyclonedx-json, cyclonedx-xml, spdx-json

The gate reads --policy FILE, or .vigil.yaml at the target root when present.`,
		Example: `  vigil scan .
  vigil scan -o sarif=vigil.sarif -o cyclonedx-json=sbom.json .
  vigil scan --commit main https://example.com/org/repo.git
  vigil scan --baseline main.json --fail-on medium .
  vigil scan --platform linux/arm64 registry.example.com/app:1.2`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			target := "."
			if len(args) == 1 {
				target = args[0]
			}
			return runScan(cmd.Context(), stdio, f, target)
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&f.engines, "engines", nil, "engines to run, comma-separated: sast, sbom (default: every engine that applies)")
	fl.StringArrayVarP(&f.outputs, "output", "o", nil, "write FORMAT[=PATH]; repeatable (default: table on stdout)")
	fl.StringVar(&f.policy, "policy", "", "policy file (default: .vigil.yaml at the target root, if present)")
	fl.StringVar(&f.baseline, "baseline", "", "earlier scan (Vigil JSON or SARIF): only new findings can fail the gate")
	fl.StringVar(&f.failOn, "fail-on", "", "severity that fails the gate: low, medium or high (overrides the policy)")
	fl.StringVar(&f.commit, "commit", "", "scan this commit (SHA, branch or tag) of the git repository TARGET")
	fl.BoolVar(&f.insecure, "insecure", false, "allow a plain-HTTP registry")
	fl.StringVar(&f.platform, "platform", "", "pick this os/arch[/variant] from a multi-arch image")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "show no progress")
	fl.BoolVar(&f.parallel, "parallel", false, "run the engines concurrently: a little faster, much more memory")
	return cmd
}

func runScan(ctx context.Context, stdio Stdio, f scanFlags, ref string) error {
	// Check everything the user typed before any slow work.
	outputs, err := parseOutputs(f.outputs)
	if err != nil {
		return err
	}
	var failOn scanner.Level
	if f.failOn != "" {
		if failOn, err = scanner.ParseLevel(f.failOn); err != nil {
			return fmt.Errorf("%w: --fail-on: %v", scanner.ErrUsage, err)
		}
	}
	var base *ci.Baseline
	if f.baseline != "" {
		if base, err = ci.LoadBaseline(f.baseline); err != nil {
			return err
		}
	}
	var pol *ci.Policy
	if f.policy != "" {
		if pol, err = ci.LoadPolicy(f.policy); err != nil {
			return err
		}
	}

	prog := newProgress(stdio.Err, !f.quiet && isTerminal(stdio.Err))
	defer prog.done()

	t, cleanup, err := resolveTarget(ctx, ref, f, prog)
	if err != nil {
		return err
	}
	defer cleanup()

	if pol == nil && t.Path != "" {
		if p := filepath.Join(t.Path, defaultPolicyFile); fileExists(p) {
			if pol, err = ci.LoadPolicy(p); err != nil {
				return err
			}
		}
	}
	if pol == nil {
		pol = ci.DefaultPolicy()
	}
	if f.failOn != "" {
		pol.FailOn.Severity = failOn
	}

	engines, err := scanner.Select(registry(prog), f.engines, t)
	if err != nil {
		return err
	}
	if err := checkOutputs(outputs, engines); err != nil {
		return err
	}

	if prog.enabled {
		stop := sbom.WatchProgress(func(msg string) { prog.set("sbom", "%s", msg) })
		defer stop()
	}
	res, err := scanner.Scan(ctx, t, engines, scanner.Options{Parallel: f.parallel})
	prog.done()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("scan of %s interrupted: %w", ref, ctx.Err())
		}
		return fmt.Errorf("scanning %s: %w", ref, err)
	}
	decision := ci.Evaluate(res, pol, base, time.Now())

	gate := reportGate(decision)
	toStdout := false
	for _, o := range outputs {
		if err := writeOutput(stdio.Out, o, res, gate); err != nil {
			return err
		}
		toStdout = toStdout || o.path == ""
	}
	if !toStdout && gate != nil {
		// Every report went to a file: the CI log still says why.
		if err := format.WriteGate(stdio.Err, gate); err != nil {
			return err
		}
	}
	if !decision.Passed() {
		return errGateFailed
	}
	return nil
}

// registry is the table of engines `vigil scan` can run, reporting their
// progress on the terminal.
func registry(prog *progress) []scanner.Engine {
	return engines.Registry(func(engine, msg string) { prog.set(engine, "%s", msg) })
}

// resolveTarget turns TARGET into a scanner.Target and a cleanup function
// that removes any workspace made for it.
func resolveTarget(ctx context.Context, ref string, f scanFlags, prog *progress) (*scanner.Target, func(), error) {
	nothing := func() {}
	ref, dirOnly, err := fromSyftScheme(ref)
	if err != nil {
		return nil, nothing, err
	}
	if dirOnly {
		if st, err := os.Stat(ref); err != nil || !st.IsDir() {
			return nil, nothing, fmt.Errorf("%w: dir:%s: no such directory", scanner.ErrUsage, ref)
		}
	}
	if f.commit != "" || source.IsRepoURL(ref) {
		if f.platform != "" {
			return nil, nothing, fmt.Errorf("%w: --platform applies to images, not to repository %q", scanner.ErrUsage, ref)
		}
		if err := source.CheckRev(f.commit); err != nil {
			return nil, nothing, fmt.Errorf("--commit: %w", err)
		}
		prog.set("git", "checking out %s", ref)
		ws, err := source.Checkout(ctx, ref, f.commit)
		if err != nil {
			return nil, nothing, err
		}
		return ws.Target, func() { _ = ws.Close() }, nil
	}
	if st, err := os.Stat(ref); err == nil {
		if !st.IsDir() {
			return nil, nothing, fmt.Errorf("%w: %q is a file, not a directory; for an image tarball use archive:%s", scanner.ErrUsage, ref, ref)
		}
		abs, err := filepath.Abs(ref)
		if err != nil {
			return nil, nothing, fmt.Errorf("%w: %q: %v", scanner.ErrUsage, ref, err)
		}
		return &scanner.Target{Kind: scanner.KindDir, Ref: ref, Path: abs}, nothing, nil
	}
	if image.IsImageRef(ref) {
		t, err := image.Resolve(ctx, ref, image.Options{
			Insecure: f.insecure,
			Platform: f.platform,
			Progress: func(msg string) { prog.set("image", "%s", msg) },
		})
		if err != nil {
			return nil, nothing, err
		}
		return t, nothing, nil
	}
	if host, _, ok := strings.Cut(ref, "/"); ok && strings.ContainsAny(host, ".:") && !strings.HasPrefix(ref, ".") && !filepath.IsAbs(ref) {
		// It reads like an image reference that does not parse: let
		// the image package say what is wrong with it.
		_, err := image.Resolve(ctx, ref, image.Options{Insecure: f.insecure, Platform: f.platform})
		if err != nil {
			return nil, nothing, err
		}
	}
	return nil, nothing, fmt.Errorf("%w: no such directory %q (a target is a directory, a repository with --commit, an image reference, oci:DIR or archive:FILE)", scanner.ErrUsage, ref)
}

// parseOutputs reads the -o flags. At most one output may go to stdout.
func parseOutputs(flags []string) ([]output, error) {
	if len(flags) == 0 {
		return []output{{format: format.Table}}, nil
	}
	var outs []output
	stdout := ""
	for _, fl := range flags {
		name, path, _ := strings.Cut(fl, "=")
		if path == "-" {
			path = "" // FORMAT=- is standard output, as FORMAT alone
		}
		ft, err := format.Parse(name)
		if err != nil {
			return nil, fmt.Errorf("-o %s: %w", fl, err)
		}
		if path == "" {
			if stdout != "" {
				return nil, fmt.Errorf("%w: -o %s and -o %s both write to stdout; give one a path (FORMAT=PATH)", scanner.ErrUsage, stdout, fl)
			}
			stdout = fl
		} else if dir := filepath.Dir(path); !fileExists(dir) {
			return nil, fmt.Errorf("%w: -o %s: directory %q does not exist", scanner.ErrUsage, fl, dir)
		}
		outs = append(outs, output{format: ft, path: path})
	}
	return outs, nil
}

// checkOutputs refuses SBOM formats when the sbom engine is not selected.
func checkOutputs(outs []output, engines []scanner.Engine) error {
	hasSBOM := false
	for _, e := range engines {
		hasSBOM = hasSBOM || e.ID == "sbom"
	}
	for _, o := range outs {
		if o.format.NeedsSBOM() && !hasSBOM {
			return fmt.Errorf("%w: -o %s needs the sbom engine; add it to --engines", scanner.ErrUsage, o.format)
		}
	}
	return nil
}

// reportGate is the gate decision as the reports show it (format does not
// depend on ci). Converting each reason as a struct compiles only while
// format.GateReason has ci.Reason's fields: a field added to one and not
// the other breaks the build here rather than vanishing from reports.
func reportGate(d *ci.Decision) *format.Gate {
	if d == nil {
		return nil
	}
	g := &format.Gate{Decision: d.Decision}
	if d.Reasons != nil {
		g.Reasons = make([]format.GateReason, len(d.Reasons))
		for i, r := range d.Reasons {
			g.Reasons[i] = format.GateReason(r)
		}
	}
	return g
}

// writeOutput writes one report. A regular file is written beside its
// final name and renamed into place, so a reader never sees half a report.
func writeOutput(stdout io.Writer, o output, res *scanner.Result, gate *format.Gate) error {
	if o.path == "" {
		return format.Write(stdout, o.format, res, gate)
	}
	if st, err := os.Stat(o.path); err == nil && !st.Mode().IsRegular() {
		// A device or a pipe (/dev/null, /dev/stdout, a FIFO) is written
		// in place: renaming over it would replace it with a file.
		f, err := os.OpenFile(o.path, os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("writing %s: %w", o.path, err)
		}
		if err := format.Write(f, o.format, res, gate); err != nil {
			f.Close()
			return fmt.Errorf("writing %s: %w", o.path, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("writing %s: %w", o.path, err)
		}
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(o.path), "."+filepath.Base(o.path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", o.path, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename this finds nothing
	if err := format.Write(tmp, o.format, res, gate); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", o.path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", o.path, err)
	}
	// Reports are as readable as any file the user writes (CreateTemp
	// makes them private).
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", o.path, err)
	}
	if err := os.Rename(tmp.Name(), o.path); err != nil {
		return fmt.Errorf("writing %s: %w", o.path, err)
	}
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// syftSchemes are syft's source schemes that name what Vigil scans, with
// Vigil's own spelling of the same target ("" for a directory).
var syftSchemes = []struct{ scheme, vigil string }{
	{"dir:", ""},
	{"registry:", ""},
	{"oci-dir:", image.OCIPrefix},
	{"oci-archive:", image.ArchivePrefix},
	{"docker-archive:", image.ArchivePrefix},
}

// fromSyftScheme accepts a target as syft spells it (dir:PATH,
// registry:REF, oci-dir:DIR, oci-archive:FILE, docker-archive:FILE) and
// returns it as Vigil spells it, and whether it must be a directory.
// syft's sources that read a container daemon are refused with what to do
// instead. Any other target is returned as it is.
func fromSyftScheme(ref string) (string, bool, error) {
	for _, s := range syftSchemes {
		if rest, ok := strings.CutPrefix(ref, s.scheme); ok {
			if rest == "" {
				return "", false, fmt.Errorf("%w: %q names nothing after %s", scanner.ErrUsage, ref, s.scheme)
			}
			return s.vigil + rest, s.scheme == "dir:", nil
		}
	}
	for _, daemon := range []string{"docker:", "podman:", "containerd:"} {
		if strings.HasPrefix(ref, daemon) {
			return "", false, fmt.Errorf("%w: %q: Vigil does not read images from a container daemon; scan the registry reference, or save the image (docker save -o img.tar IMAGE) and scan archive:img.tar", scanner.ErrUsage, ref)
		}
	}
	return ref, false, nil
}
