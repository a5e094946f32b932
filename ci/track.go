package ci

import (
	"context"
	"errors"
	"fmt"

	"github.com/vigil-sec/vigil/scanner"
)

// recordResult stores what the gate and the findings list need of a
// scan's result, before the scan is marked succeeded: its gate summary
// and, for a first commit scan of a project, its findings. Both writes
// are idempotent, so a retried scan records again safely.
func (s *Service) recordResult(ctx context.Context, sc Scan, rescanOf string, res *scanner.Result, repo *repoPolicy) error {
	if _, err := s.storeGateSummary(ctx, sc.ID, res, repo); err != nil {
		return fmt.Errorf("record gate summary: %w", err)
	}
	if rescanOf != "" || sc.Kind != KindCommit || sc.ProjectID == "" {
		return nil
	}
	found := make([]ObservedFinding, 0, len(res.Findings))
	for _, f := range res.Findings {
		found = append(found, ObservedFinding{
			Fingerprint: f.Fingerprint, RuleID: f.RuleID, Severity: f.Severity.String(), Confidence: f.Confidence.String(),
			File: f.File, Line: f.Line, Message: f.Message, Suppressed: f.SuppressedInSource(),
		})
	}
	if err := s.store.RecordFindings(ctx, sc.ID, found); err != nil {
		return fmt.Errorf("record findings: %w", err)
	}
	return nil
}

// The states of a tracked finding.
const (
	FindingOpen   = "open"   // seen in the latest scans, not suppressed
	FindingFixed  = "fixed"  // a later default-branch scan no longer has it
	FindingWaived = "waived" // open, but an active waiver or a #nosec comment covers it
)

// ActiveWaivers are the waivers of the project's latest policy and of the
// API, as the gate applies them.
func (s *Service) ActiveWaivers(ctx context.Context, p Project) ([]Waiver, error) {
	var out []Waiver
	stored, err := s.store.GetPolicy(ctx, p.ID, 0)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return nil, err
	default:
		// A policy that does not parse waives nothing (the gate fails).
		if pol, err := ParsePolicy("policy", []byte(stored.Body)); err == nil {
			out = append(out, pol.Waivers...)
		}
	}
	ws, err := s.store.ListWaivers(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	for _, w := range ws {
		out = append(out, w.Waiver())
	}
	return out, nil
}

// WaivedFindings reports which findings a #nosec comment or an active
// waiver covers, as Evaluate decides it.
func WaivedFindings(fs []TrackedFinding, waivers []Waiver) []bool {
	res := &scanner.Result{Findings: make([]scanner.Finding, len(fs))}
	for i, f := range fs {
		res.Findings[i] = scanner.Finding{RuleID: f.RuleID, File: f.File, Line: f.Line, Fingerprint: f.Fingerprint}
	}
	// Only waivers: no thresholds or exclusions, and every finding is
	// fingerprinted, so Evaluate keeps them all (it sorts them).
	Evaluate(res, &Policy{Waivers: waivers}, nil, now())
	byFP := make(map[string]bool, len(res.Findings))
	for _, f := range res.Findings {
		byFP[f.Fingerprint] = f.Suppressed
	}
	out := make([]bool, len(fs))
	for i, f := range fs {
		out[i] = f.Suppressed || byFP[f.Fingerprint]
	}
	return out
}
