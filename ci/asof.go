package ci

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-sec/vigil/scanner"
)

// Gate decisions as they stood at a past time: what an audit report says
// of the scans of a release (package reports/publish), the day it was cut,
// however the project's policy and waivers changed since. Decisions are
// not stored; they follow from stored things that are never changed (the
// scan's gate summary, its policy file, the policy versions) and from the
// waivers made through the API, which are.

// PastVerdict is a scan's gate decision as it stood at a past time, with
// the policy and the waivers that made it.
type PastVerdict struct {
	Verdict
	// At is the time the scan was judged at: a waiver that had expired
	// by then is reported as expired.
	At time.Time
	// Waivers are every waiver of the policy that judged, expired ones
	// included, in the order Evaluate numbers them: the project policy's,
	// the commit's policy file's, then those made through the API.
	Waivers []Waiver
}

// JudgeAt is the gate decision of a succeeded scan as it stood at time
// at, which must not be before the scan finished: judged at that time, by
// the project's policy version that was the newest then (combined with
// the commit's own policy file, as Judge does), with the waivers made
// through the API by then; and, for a commit off the project's default
// branch, against the baseline Judge uses now if that scan had finished
// by then (else none: every finding counts). Waivers deleted since are not
// known, so they do not count.
//
// res, when not nil, is the scan's full result (Result): Evaluate
// annotates it in place, as the gate saw it then (waivers' suppressions,
// new or unchanged). When nil, the scan's stored gate summary is judged.
// The decision is not cached, and reads only what was stored: the same
// scan and time give the same decision for as long as no waiver made
// through the API before at is deleted.
//
// ErrInvalid for a scan that has not succeeded, or a time before it
// finished.
func (s *Service) JudgeAt(ctx context.Context, sc Scan, res *scanner.Result, at time.Time) (PastVerdict, error) {
	switch {
	case sc.Status != ScanSucceeded:
		return PastVerdict{}, fmt.Errorf("%w: scan %s is %s: only a succeeded scan is judged as it stood", ErrInvalid, sc.ID, sc.Status)
	case at.Before(sc.FinishedAt):
		return PastVerdict{}, fmt.Errorf("%w: scan %s finished at %s, after %s", ErrInvalid, sc.ID,
			sc.FinishedAt.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
	}
	at = at.UTC()
	sum, err := s.gateSummary(ctx, sc)
	if err != nil {
		return PastVerdict{}, err
	}
	var p Project
	if sc.ProjectID != "" {
		if p, err = s.store.GetProject(ctx, sc.ProjectID); err != nil {
			return PastVerdict{}, err
		}
	}
	st, err := s.store.GateState(ctx, sc.ID)
	if err != nil {
		return PastVerdict{}, err
	}
	var (
		version    int
		apiWaivers []ProjectWaiver
	)
	if p.ID != "" {
		if version, err = s.policyVersionAt(ctx, p.ID, st.PolicyVersion, at); err != nil {
			return PastVerdict{}, err
		}
		ws, err := s.store.ListWaivers(ctx, p.ID)
		if err != nil {
			return PastVerdict{}, err
		}
		for _, w := range ws {
			if !w.CreatedAt.After(at) {
				apiWaivers = append(apiWaivers, w)
			}
		}
	}
	pol, info, bad, err := s.gatePolicy(ctx, sc, p, version, sum, apiWaivers)
	if err != nil {
		return PastVerdict{}, err
	}
	if bad != nil {
		return PastVerdict{At: at, Verdict: Verdict{Decision: &Decision{Decision: Fail, Reasons: []Reason{{Code: CodeBadPolicy, Message: bad.Error()}}}}}, nil
	}
	var base *Baseline
	if sc.Kind == KindCommit && p.DefaultBranch != "" && st.Branch != p.DefaultBranch && st.BaselineScanID != "" {
		bs, err := s.store.GetScan(ctx, st.BaselineScanID)
		if err != nil {
			return PastVerdict{}, err
		}
		if !bs.FinishedAt.IsZero() && !bs.FinishedAt.After(at) {
			if base, err = s.baseline(ctx, bs, p); err != nil {
				return PastVerdict{}, err
			}
		}
	}
	if res == nil {
		res = sum.result()
	}
	d := Evaluate(res, pol, base, at)
	nameAPIWaivers(d, len(pol.Waivers)-len(apiWaivers), apiWaivers)
	return PastVerdict{Verdict: Verdict{Decision: d, Policy: info}, At: at, Waivers: pol.Waivers}, nil
}

// policyVersionAt is the newest of the project's policy versions, up to
// latest, that existed at time at; 0 when none did.
func (s *Service) policyVersionAt(ctx context.Context, projectID string, latest int, at time.Time) (int, error) {
	for v := latest; v > 0; v-- {
		pv, err := s.store.GetPolicy(ctx, projectID, v)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if !pv.CreatedAt.After(at) {
			return v, nil
		}
	}
	return 0, nil
}
