package ci

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-sec/vigil/scanner"
)

// TestGateSummaryDecidesLikeTheResult checks that the gate summary, once
// stored and read back, gives Evaluate the decision the full result
// gives, for policies that use every part of it: thresholds, exclusions,
// in-source suppressions, active and expired waivers, a baseline and
// denied licenses.
func TestGateSummaryDecidesLikeTheResult(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
	full := func() *scanner.Result {
		return &scanner.Result{
			Engines: []scanner.EngineRun{{ID: "sast", Version: "v2"}},
			Findings: []scanner.Finding{
				{Engine: "sast", RuleID: "G404", Message: "weak random", Severity: scanner.LevelHigh, Confidence: scanner.LevelMedium,
					File: "main.go", Line: 5, Column: 3, Snippet: "rand.Intn(3)", CWE: "CWE-338", Fingerprint: "f1"},
				{Engine: "sast", RuleID: "G101", Message: "credentials", Severity: scanner.LevelHigh, Confidence: scanner.LevelLow,
					File: "cmd/tool/creds.go", Line: 9, Fingerprint: "f2"},
				{Engine: "sast", RuleID: "G304", Message: "file inclusion", Severity: scanner.LevelMedium, Confidence: scanner.LevelHigh,
					File: "internal/x.go", Line: 1, Fingerprint: "f3"},
				{Engine: "sast", RuleID: "G115", Message: "overflow", Severity: scanner.LevelHigh, Confidence: scanner.LevelHigh,
					File: "internal/y.go", Line: 2, Fingerprint: "f4", Suppressed: true,
					Suppressions: []scanner.Suppression{{Kind: scanner.SuppressionInSource, Justification: "checked"}}},
			},
			SBOM: &scanner.SBOM{Components: []scanner.Component{
				{Name: "a", Version: "1", Type: "go-module", PURL: "pkg:golang/a@1", Licenses: []string{"MIT"}},
				{Name: "b", Version: "2", Type: "go-module", Licenses: []string{"MIT OR GPL-3.0-only"}, Locations: []string{"go.mod"}},
				{Name: "c", Type: "deb"},
			}},
		}
	}
	day := func(d int) time.Time { return time.Date(2026, 6, d, 0, 0, 0, 0, time.UTC) }
	policies := map[string]*Policy{
		"default": DefaultPolicy(),
		"strict with licenses": {FailOn: Thresholds{Severity: scanner.LevelLow, Confidence: scanner.LevelLow},
			Licenses: LicensePolicy{Deny: []string{"GPL-3.0-only"}}},
		"exclusions and waivers": {FailOn: Thresholds{Severity: scanner.LevelMedium, Confidence: scanner.LevelLow},
			Rules: RuleFilter{Exclude: []string{"G304"}}, Paths: PathFilter{Exclude: []string{"cmd/**"}},
			Waivers: []Waiver{
				{Rule: "G404", Reason: "r", Owner: "o", Expires: day(20)},
				{Fingerprint: "f2", Reason: "r", Owner: "o", Expires: day(1)},
			}},
		"expired waiver": {FailOn: Thresholds{Severity: scanner.LevelHigh, Confidence: scanner.LevelLow},
			Waivers: []Waiver{{Rule: "G404", Path: "*.go", Reason: "r", Owner: "o", Expires: day(14)}}},
	}
	for name, pol := range policies {
		for _, base := range []*Baseline{nil, NewBaseline("f1", "f3")} {
			want := Evaluate(full(), pol, base, at)

			b, err := json.Marshal(summarize(full()))
			if err != nil {
				t.Fatal(err)
			}
			var sum gateSummary
			if err := json.Unmarshal(b, &sum); err != nil {
				t.Fatal(err)
			}
			got := Evaluate(sum.result(), pol, base, at)
			// A second evaluation of the same summary is not changed by
			// the first (Evaluate changes what it is given).
			again := Evaluate(sum.result(), pol, base, at)
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("%s, baseline %v: decision from the summary (-got +want):\n%s", name, base != nil, diff)
			}
			if diff := cmp.Diff(again, want); diff != "" {
				t.Errorf("%s, baseline %v: second decision from the summary (-got +want):\n%s", name, base != nil, diff)
			}
		}
	}
}

func TestGateCacheDeadline(t *testing.T) {
	t.Parallel()
	c := newGateCache()
	at := time.Date(2026, 6, 15, 23, 0, 0, 0, time.UTC)
	k := gateKey{scan: "s1", state: GateState{PolicyVersion: 1}}
	d := Verdict{Decision: &Decision{Decision: Pass}}
	c.put(k, d, at.Add(time.Hour))
	if got, ok := c.get(k, at); !ok || got.Decision != d.Decision {
		t.Errorf("get before the deadline: %v, %v", got, ok)
	}
	if _, ok := c.get(k, at.Add(time.Hour)); ok {
		t.Error("get at the deadline: hit, want a miss")
	}
	other := k
	other.state.WaiverVersion = 1
	if _, ok := c.get(other, at); ok {
		t.Error("get with another waiver version: hit, want a miss")
	}
	for i := range maxGateCache + 10 {
		c.put(gateKey{scan: string(rune(i))}, d, at.Add(time.Hour))
	}
	if n := len(c.m); n > maxGateCache {
		t.Errorf("cache holds %d entries, more than %d", n, maxGateCache)
	}
}

func TestNameAPIWaivers(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
	ws := []ProjectWaiver{{ID: "w-api", Rule: "G404", Owner: "o", Reason: "r", Expires: at.AddDate(0, 0, -2)}}
	pol := &Policy{FailOn: Thresholds{Severity: scanner.LevelLow}, Waivers: []Waiver{
		{Rule: "G101", Owner: "o", Reason: "r", Expires: at.AddDate(0, 0, -1), Line: 7},
		ws[0].Waiver(),
	}}
	pol.Source = "policy.yaml"
	res := &scanner.Result{Findings: []scanner.Finding{{RuleID: "G404", Severity: scanner.LevelHigh, Confidence: scanner.LevelHigh, File: "a.go", Line: 1, Fingerprint: "f"}}}
	d := Evaluate(res, pol, nil, at)
	nameAPIWaivers(d, 1, ws)
	var msgs []string
	for _, r := range d.Reasons {
		msgs = append(msgs, r.Code+": "+r.Message)
	}
	want := []string{
		"FINDING: G404 (high severity, high confidence) at a.go:1:  (waiver w-api expired at the end of 2026-06-13)",
		"WAIVER_EXPIRED: waivers[0] (policy.yaml:7) for rule G101, owned by o, expired at the end of 2026-06-14 and no longer applies",
		"WAIVER_EXPIRED: waiver w-api for rule G404, owned by o, expired at the end of 2026-06-13 and no longer applies",
	}
	if diff := cmp.Diff(msgs, want); diff != "" {
		t.Errorf("reasons (-got +want):\n%s", diff)
	}
}
