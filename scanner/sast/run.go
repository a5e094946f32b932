package sast

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/securego/gosec/v2"
	"github.com/securego/gosec/v2/analyzers"
	"github.com/securego/gosec/v2/issue"
	"github.com/securego/gosec/v2/rules"
	"golang.org/x/tools/go/packages"

	"github.com/vigil-sec/vigil/scanner"
)

// engine is one configured SAST engine; cfg has its defaults filled in.
type engine struct {
	cfg *Config
}

// run is the engine's scanner.Engine.Run.
func (e *engine) run(ctx context.Context, t *scanner.Target) (*scanner.Output, error) {
	if err := e.cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", scanner.ErrUsage, err)
	}
	if !applies(t) {
		var kind scanner.Kind
		var ref string
		if t != nil {
			kind, ref = t.Kind, t.Ref
		}
		return nil, fmt.Errorf("%w: %s target %q: %w", scanner.ErrUsage, kind, ref, errNotApplicable)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	root, err := filepath.Abs(t.Path)
	if err != nil {
		return nil, fmt.Errorf("target path %q: %w", t.Path, err)
	}

	// gosec cannot be cancelled, so the scan runs in its own goroutine and
	// Run returns as soon as ctx is done. Cancelling scanCtx on return
	// stops the go command and keeps the workers from starting new
	// packages.
	scanCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	prog := &progress{fn: e.cfg.Progress}
	defer prog.stop()

	type outcome struct {
		out *scanner.Output
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		out, err := e.scan(scanCtx, t.Path, root, prog)
		done <- outcome{out, err}
	}()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case o := <-done:
		return o.out, o.err
	}
}

// scan finds the target's Go modules and analyses each in turn. A module
// the go command cannot load becomes an Unanalysed part of the output, with
// the go command's reason; the other modules are still analysed.
func (e *engine) scan(ctx context.Context, path, root string, prog *progress) (*scanner.Output, error) {
	if _, err := exec.LookPath("go"); err != nil {
		return nil, fmt.Errorf("the sast engine runs the go command: %w", err)
	}
	lay, err := findModules(root)
	if err != nil {
		return nil, fmt.Errorf("finding go modules in %s: %w", path, err)
	}
	warn := newWarnings(root)
	for _, w := range lay.warnings {
		warn.add(w)
	}
	out := &scanner.Output{Unanalysed: lay.unanalysed}
	var parts [][]item
	for _, m := range lay.modules {
		items, err := e.scanModule(ctx, lay, m, root, prog, warn)
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		if err != nil {
			// The go command names files by absolute path; the
			// result names them relative to the target.
			reason := strings.ReplaceAll(err.Error(), root+string(filepath.Separator), "")
			out.Unanalysed = append(out.Unanalysed, scanner.Unanalysed{Engine: ID, Path: m.rel, Reason: reason})
			continue
		}
		parts = append(parts, items...)
	}
	slices.SortStableFunc(out.Unanalysed, func(a, b scanner.Unanalysed) int { return strings.Compare(a.Path, b.Path) })
	out.Findings = fingerprint(parts...)
	out.Warnings = warn.list()
	return out, nil
}

// scanModule analyses the packages of one module and returns their items.
// An error means the module could not be loaded at all.
func (e *engine) scanModule(ctx context.Context, lay *layout, m module, root string, prog *progress, warn *warnings) ([][]item, error) {
	if err := e.download(ctx, m); err != nil {
		return nil, err
	}
	if c := scanner.CacheFrom(ctx); c != nil && !e.cfg.Tests {
		parts, ok, err := e.scanIncremental(ctx, c, lay, m, root, prog, warn)
		if ok || err != nil {
			return parts, err
		}
	}
	log := e.cfg.Logger
	start := time.Now()
	pkgs, err := packages.Load(&packages.Config{
		Context:    ctx,
		Mode:       listMode,
		Dir:        m.dir,
		Env:        e.env(m, phaseBuild),
		Tests:      e.cfg.Tests,
		BuildFlags: e.buildFlags(),
	}, "./...")
	if err != nil {
		return nil, goError(err)
	}
	pkgs = lay.owned(m, pkgs)
	log.Debug("sast: packages loaded", "module", m.rel, "packages", len(pkgs), "elapsed", time.Since(start))

	// Packages that will be analysed report their load errors with their
	// result, once they are type-checked; the others report them here.
	keep := analysable(pkgs)
	for _, p := range pkgs {
		if !slices.Contains(keep, p) {
			for _, w := range warn.packageWarnings(p) {
				warn.add(w)
			}
		}
	}
	pkgs = keep
	if len(pkgs) == 0 {
		warn.add(fmt.Sprintf("no go packages found in module %s", m.rel))
	}

	prog.start(len(pkgs))
	start = time.Now()
	results := e.analyse(ctx, pkgs, prog, warn)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var parts [][]item
	for _, r := range results {
		items, ws := toItems(root, r.issues)
		parts = append(parts, items)
		for _, w := range slices.Concat(r.loadWarnings, r.warnings, ws) {
			warn.add(w)
		}
	}
	log.Debug("sast: packages analysed", "module", m.rel, "packages", len(pkgs), "elapsed", time.Since(start))
	return parts, nil
}

// analysable drops the packages gosec would analyse twice or cannot
// analyse: those that failed to load, the generated test mains and, when
// tests are loaded, a package whose test variant (which holds all of its
// files) is also there.
func analysable(pkgs []*packages.Package) []*packages.Package {
	ids := make(map[string]bool, len(pkgs))
	for _, p := range pkgs {
		ids[p.ID] = true
	}
	var out []*packages.Package
	for _, p := range pkgs {
		switch {
		case p.Name == "":
		case strings.HasSuffix(p.ID, ".test"):
		case ids[p.ID+" ["+p.PkgPath+".test]"]:
		default:
			out = append(out, p)
		}
	}
	return out
}

// pkgResult is what gosec found in one package: its issues, suppressed
// ones included, and the warnings of its analysis (files gosec could not
// check, a rule that failed).
type pkgResult struct {
	pkg    *packages.Package
	issues []*issue.Issue
	// loadWarnings are the package's load, parse and type errors.
	loadWarnings []string
	warnings     []string
}

// analyse runs gosec's rules and analyzers on every package, spread over
// the configured number of workers, and returns each package's result in
// the order of pkgs. It stops starting packages when ctx is done; the
// packages it skipped have no result.
func (e *engine) analyse(ctx context.Context, pkgs []*packages.Package, prog *progress, warn *warnings) []pkgResult {
	workers := min(e.cfg.Concurrency, len(pkgs))
	if workers == 0 {
		return nil
	}
	// Inside a package gosec runs its analyzers concurrently too; share
	// the budget so that the whole scan uses about cfg.Concurrency CPUs.
	perWorker := max(1, e.cfg.Concurrency/workers)
	logger := gosecLogger(e.cfg.Logger)

	results := make([]pkgResult, len(pkgs))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			// The Analyzer keeps what it found in its own state, so
			// every worker has its own; what each package added to it
			// is that package's result.
			a := newAnalyzer(e.cfg, perWorker, logger)
			seenErrs := map[string]int{}
			var imp *exportImporter
			for i := range jobs {
				if ctx.Err() != nil {
					continue
				}
				pkg := pkgs[i]
				// Packages are parsed and type-checked here, one at a
				// time per worker, so that a module's size does not
				// decide the scan's memory.
				typeCheck(&imp, pkg)
				before, _, _ := a.Report()
				n := len(before)
				r := pkgResult{pkg: pkg, loadWarnings: warn.packageWarnings(pkg)}
				if err := check(a, pkg); err != nil {
					r.warnings = append(r.warnings, fmt.Sprintf("package %s: %v", pkg.PkgPath, err))
				}
				issues, _, errs := a.Report()
				r.issues = slices.Clone(issues[n:])
				for file, fe := range errs {
					for _, err := range fe[seenErrs[file]:] {
						r.warnings = append(r.warnings, fmt.Sprintf("%s:%d:%d: %s", warn.rel(file), err.Line, err.Column, err.Err))
					}
					seenErrs[file] = len(fe)
				}
				results[i] = r
				release(pkg)
				prog.step()
			}
		})
	}
feed:
	for i := range pkgs {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	return results
}

// newAnalyzer returns a gosec analyzer with every rule and analyzer
// loaded, keeping #nosec'd issues with their suppressions.
func newAnalyzer(cfg *Config, concurrency int, logger *log.Logger) *gosec.Analyzer {
	const trackSuppressions = true
	a := gosec.NewAnalyzer(gosec.NewConfig(), cfg.Tests, cfg.ExcludeGenerated, trackSuppressions, concurrency, logger)
	a.LoadRules(rules.Generate(trackSuppressions).RulesInfo())
	a.LoadAnalyzers(analyzers.Generate(trackSuppressions).AnalyzersInfo())
	return a
}

// check runs gosec on one package. A panic in a rule becomes an error, so
// one odd package cannot bring the server down.
func check(a *gosec.Analyzer, pkg *packages.Package) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("gosec failed: %v", r)
		}
	}()
	a.CheckRules(pkg)
	a.CheckAnalyzers(pkg)
	return nil
}

// gosecLogger routes gosec's log lines to l at debug level, or discards
// them when l does not log debug.
func gosecLogger(l *slog.Logger) *log.Logger {
	if l == nil || !l.Enabled(context.Background(), slog.LevelDebug) {
		return log.New(io.Discard, "", 0)
	}
	return slog.NewLogLogger(l.With("engine", ID, "from", "gosec").Handler(), slog.LevelDebug)
}

// progress reports to Config.Progress. It is safe for concurrent use and
// stays silent once stopped.
type progress struct {
	fn func(done, total int)

	mu          sync.Mutex
	done, total int
	stopped     bool
}

// start adds n packages to the total: the engine loads one module at a
// time.
func (p *progress) start(n int) {
	p.report(func() { p.total += n })
}

func (p *progress) step() {
	p.report(func() { p.done++ })
}

func (p *progress) report(update func()) {
	if p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	update()
	p.fn(p.done, p.total)
}

// stop ends the reports; it returns once any report in progress is done.
func (p *progress) stop() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
}

// warnings collects an engine's warnings without duplicates. It is used
// by one goroutine at a time.
type warnings struct {
	root string
	seen map[string]bool
	msgs []string
}

func newWarnings(root string) *warnings {
	return &warnings{root: root, seen: make(map[string]bool)}
}

func (w *warnings) add(msg string) {
	if !w.seen[msg] {
		w.seen[msg] = true
		w.msgs = append(w.msgs, msg)
	}
}

// list returns the warnings, sorted.
func (w *warnings) list() []string {
	slices.Sort(w.msgs)
	return w.msgs
}

// rel shortens a position or a file name inside the target root to a
// slash-separated path relative to the root.
func (w *warnings) rel(pos string) string {
	if after, ok := strings.CutPrefix(pos, w.root+string(filepath.Separator)); ok {
		return filepath.ToSlash(after)
	}
	return pos
}

// packageWarnings are one package's load, parse and type errors, which
// gosec's CLI reports as "Golang errors" and scans past.
func (w *warnings) packageWarnings(p *packages.Package) []string {
	var out []string
	typeErrors := slices.ContainsFunc(p.Errors, func(e packages.Error) bool { return e.Kind != packages.ListError })
	for _, e := range p.Errors {
		// With type errors, the go command's compile output repeats them.
		if e.Kind == packages.ListError && typeErrors && strings.HasPrefix(e.Msg, "# ") {
			continue
		}
		if e.Pos == "" || e.Pos == "-" {
			out = append(out, fmt.Sprintf("package %s: %s", p.PkgPath, e.Msg))
		} else {
			out = append(out, fmt.Sprintf("%s: %s", w.rel(e.Pos), e.Msg))
		}
	}
	if p.IllTyped && p.Name != "" {
		out = append(out, fmt.Sprintf("package %s has errors: gosec's SSA analysers (G115, G602, G7xx and others) skipped it", p.PkgPath))
	}
	return out
}
