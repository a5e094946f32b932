package scanner

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// Scan runs the engines on the target concurrently and merges what they
// found. The first engine error cancels the others and is returned as an
// *EngineError.
func Scan(ctx context.Context, t *Target, engines []Engine) (*Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	res := &Result{Target: t.Info(), StartedAt: time.Now().UTC(), Findings: []Finding{}}
	outs := make([]*Output, len(engines))
	runs := make([]EngineRun, len(engines))
	errs := make([]error, len(engines))

	var wg sync.WaitGroup
	for i, e := range engines {
		wg.Go(func() {
			start := time.Now()
			out, err := e.Run(ctx, t)
			runs[i] = EngineRun{ID: e.ID, Version: e.Version, Seconds: time.Since(start).Seconds()}
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

	for i, out := range outs {
		if out == nil {
			continue
		}
		runs[i].Warnings = out.Warnings
		res.Findings = append(res.Findings, out.Findings...)
		if out.SBOM != nil {
			res.SBOM = out.SBOM
		}
	}
	res.Engines = runs
	SortFindings(res.Findings)
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
