package scanner

import (
	"cmp"
	"context"
	"errors"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"time"
)

// Options tune Scan. The zero value runs engines one after another.
type Options struct {
	// Parallel runs the engines concurrently. It saves about a sixth of
	// the wall time of a sast+sbom scan and costs about 40% more peak
	// memory, since both engines then hold a whole tree's worth of data
	// at once (see README, Performance).
	Parallel bool
	// Cache, when set, serves engine outputs for content scanned before
	// (a commit's tree, an image digest; see ContentKey) and stores fresh
	// ones. Engines also find it with CacheFrom for partial results.
	Cache Cache
}

// Scan runs the engines on the target and merges what they found. The
// first engine error stops the scan (and, with opts.Parallel, cancels the
// other engines) and is returned as an *EngineError.
func Scan(ctx context.Context, t *Target, engines []Engine, opts Options) (*Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var content string
	if opts.Cache != nil {
		ctx = WithCache(ctx, opts.Cache)
		// Without a content key nothing is reused; the engines still
		// run, and may cache parts of their work.
		content, _ = ContentKey(ctx, t)
	}

	res := &Result{Target: t.Info(), StartedAt: time.Now().UTC(), Findings: []Finding{}}
	outs := make([]*Output, len(engines))
	runs := make([]EngineRun, len(engines))
	errs := make([]error, len(engines))

	var wg sync.WaitGroup
	for i, e := range engines {
		if !opts.Parallel && i > 0 {
			// One at a time: wait for the previous engine and hand the
			// memory it used back before the next one starts.
			wg.Wait()
			if ctx.Err() != nil {
				break
			}
			runtime.GC()
			debug.FreeOSMemory()
		}
		wg.Go(func() {
			start := time.Now()
			out, hit, err := cachedRun(ctx, opts.Cache, content, e, t)
			runs[i] = EngineRun{ID: e.ID, Version: e.Version, Seconds: time.Since(start).Seconds(), Cached: hit}
			if err != nil {
				errs[i] = &EngineError{Engine: e.ID, Err: err}
				cancel()
				return
			}
			outs[i] = out
		})
	}
	wg.Wait()

	// Report a real failure rather than the cancellations it caused.
	var firstErr error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if firstErr == nil || (errors.Is(firstErr, context.Canceled) && !errors.Is(err, context.Canceled)) {
			firstErr = err
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		// The caller gave up between two engines: a partial result
		// must not read as a whole one.
		return nil, err
	}

	for i, out := range outs {
		if out == nil {
			continue
		}
		runs[i].Warnings = out.Warnings
		res.Findings = append(res.Findings, out.Findings...)
		for _, u := range out.Unanalysed {
			if u.Engine == "" {
				u.Engine = engines[i].ID
			}
			res.Unanalysed = append(res.Unanalysed, u)
		}
		if out.SBOM != nil {
			res.SBOM = out.SBOM
		}
	}
	res.Engines = runs
	SortFindings(res.Findings)
	slices.SortStableFunc(res.Unanalysed, func(a, b Unanalysed) int {
		return cmp.Or(cmp.Compare(a.Path, b.Path), cmp.Compare(a.Engine, b.Engine))
	})
	res.FinishedAt = time.Now().UTC()
	return res, nil
}

// SortFindings orders findings by file, line, column and rule.
func SortFindings(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Column, b.Column),
			cmp.Compare(a.RuleID, b.RuleID),
		)
	})
}
