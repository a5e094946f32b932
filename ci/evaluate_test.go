package ci

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-sec/vigil/scanner"
)

const (
	low    = scanner.LevelLow
	medium = scanner.LevelMedium
	high   = scanner.LevelHigh
)

// finding returns a high/high G404 finding at file:line whose fingerprint
// is "fp-<file>".
func finding(file string, line int) scanner.Finding {
	return scanner.Finding{
		Engine: "sast", RuleID: "G404", Message: "weak random",
		Severity: high, Confidence: high,
		File: file, Line: line, Fingerprint: "fp-" + file,
	}
}

// with returns f changed by the edit.
func with(f scanner.Finding, edit func(*scanner.Finding)) scanner.Finding {
	edit(&f)
	return f
}

// policy parses a policy for a test.
func policy(t *testing.T, yaml string) *Policy {
	t.Helper()
	p, err := ParsePolicy(".vigil.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("ParsePolicy: %v", err)
	}
	return p
}

func TestEvaluateThresholds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                 string
		policy               string // "" means a nil policy
		severity, confidence scanner.Level
		want                 string
	}{
		{"default: high/low fails", "", high, low, Fail},
		{"default: high/high fails", "", high, high, Fail},
		{"default: medium/high passes", "", medium, high, Pass},
		{"default: high/unknown confidence passes", "", high, scanner.LevelUnknown, Pass},
		{"medium/medium: at both fails", mediumMedium, medium, medium, Fail},
		{"medium/medium: above both fails", mediumMedium, high, high, Fail},
		{"medium/medium: severity below passes", mediumMedium, low, high, Pass},
		{"medium/medium: confidence below passes", mediumMedium, high, low, Pass},
		{"low/low: low/low fails", "fail_on: {severity: low, confidence: low}", low, low, Fail},
		{"high/high: high/medium passes", "fail_on: {severity: high, confidence: high}", high, medium, Pass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var p *Policy
			if tt.policy != "" {
				p = policy(t, tt.policy)
			}
			res := &scanner.Result{Findings: []scanner.Finding{with(finding("a.go", 1), func(f *scanner.Finding) {
				f.Severity, f.Confidence = tt.severity, tt.confidence
			})}}
			d := Evaluate(res, p, nil, time.Now())
			if got := d.Decision; got != tt.want {
				t.Errorf("Decision = %q, want %q; reasons: %+v", got, tt.want, d.Reasons)
			}
			if got, want := d.Passed(), tt.want == Pass; got != want {
				t.Errorf("Passed() = %v, want %v", got, want)
			}
		})
	}
}

const mediumMedium = "fail_on:\n  severity: medium\n  confidence: medium\n"

func TestEvaluate(t *testing.T) {
	t.Parallel()
	const waiverPolicy = `waivers:
  - rule: G404
    path: "cmd/**"
    reason: not for secrets
    owner: sec@example.com
    expires: 2026-12-31
`
	endOfDay := time.Date(2026, 12, 31, 23, 59, 59, 999999999, time.UTC)
	nextDay := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	waived := scanner.Suppression{Kind: scanner.SuppressionExternal, Justification: "not for secrets", Owner: "sec@example.com", Expires: "2026-12-31"}
	nosec := scanner.Suppression{Kind: scanner.SuppressionInSource, Justification: "checked"}

	tests := []struct {
		name         string
		policy       string
		base         *Baseline
		now          time.Time
		findings     []scanner.Finding
		sbom         *scanner.SBOM
		want         *Decision
		wantFindings []scanner.Finding
	}{
		{
			name:         "no findings passes",
			want:         &Decision{Pass, []Reason{{Code: CodePassed, Message: "no finding at or above high severity and low confidence; no findings"}}},
			wantFindings: []scanner.Finding{},
		},
		{
			name:     "a finding fails, reasons sorted like findings",
			findings: []scanner.Finding{finding("b.go", 2), finding("a.go", 9), finding("a.go", 3)},
			want: &Decision{Fail, []Reason{
				{Code: CodeFinding, Message: "G404 (high severity, high confidence) at a.go:3: weak random", RuleID: "G404", File: "a.go", Line: 3, Fingerprint: "fp-a.go"},
				{Code: CodeFinding, Message: "G404 (high severity, high confidence) at a.go:9: weak random", RuleID: "G404", File: "a.go", Line: 9, Fingerprint: "fp-a.go"},
				{Code: CodeFinding, Message: "G404 (high severity, high confidence) at b.go:2: weak random", RuleID: "G404", File: "b.go", Line: 2, Fingerprint: "fp-b.go"},
			}},
			wantFindings: []scanner.Finding{finding("a.go", 3), finding("a.go", 9), finding("b.go", 2)},
		},
		{
			name:   "rules and paths excluded",
			policy: "rules:\n  exclude: [g404]\npaths:\n  exclude: [\"**/testdata/**\"]\n",
			findings: []scanner.Finding{
				finding("a.go", 1),
				with(finding("testdata/x.go", 1), func(f *scanner.Finding) { f.RuleID = "G101" }),
				with(finding("pkg/testdata/y.go", 1), func(f *scanner.Finding) { f.RuleID = "G101" }),
				with(finding("pkg/z.go", 1), func(f *scanner.Finding) { f.RuleID = "G101"; f.Severity = low }),
			},
			want: &Decision{Pass, []Reason{{Code: CodePassed, Message: "no finding at or above high severity and low confidence; 1 finding: 1 below the thresholds; 3 excluded by the policy"}}},
			wantFindings: []scanner.Finding{
				with(finding("pkg/z.go", 1), func(f *scanner.Finding) { f.RuleID = "G101"; f.Severity = low }),
			},
		},
		{
			name:     "waiver by rule and glob, on its last day",
			policy:   waiverPolicy,
			now:      endOfDay,
			findings: []scanner.Finding{finding("cmd/vigil/main.go", 7)},
			want:     &Decision{Pass, []Reason{{Code: CodePassed, Message: "no finding at or above high severity and low confidence; 1 finding: 1 suppressed"}}},
			wantFindings: []scanner.Finding{with(finding("cmd/vigil/main.go", 7), func(f *scanner.Finding) {
				f.Suppressed, f.Suppressions = true, []scanner.Suppression{waived}
			})},
		},
		{
			name:     "waiver glob does not match another path",
			policy:   waiverPolicy,
			now:      endOfDay,
			findings: []scanner.Finding{finding("internal/x.go", 7)},
			want: &Decision{Fail, []Reason{
				{Code: CodeFinding, Message: "G404 (high severity, high confidence) at internal/x.go:7: weak random", RuleID: "G404", File: "internal/x.go", Line: 7, Fingerprint: "fp-internal/x.go"},
			}},
			wantFindings: []scanner.Finding{finding("internal/x.go", 7)},
		},
		{
			name:     "waiver expired the day after",
			policy:   waiverPolicy,
			now:      nextDay,
			findings: []scanner.Finding{finding("cmd/vigil/main.go", 7)},
			want: &Decision{Fail, []Reason{
				{Code: CodeFinding, Message: "G404 (high severity, high confidence) at cmd/vigil/main.go:7: weak random (waivers[0] expired at the end of 2026-12-31)", RuleID: "G404", File: "cmd/vigil/main.go", Line: 7, Fingerprint: "fp-cmd/vigil/main.go"},
				{Code: CodeWaiverExpired, Message: "waivers[0] (.vigil.yaml:2) for rule G404 on cmd/**, owned by sec@example.com, expired at the end of 2026-12-31 and no longer applies", RuleID: "G404"},
			}},
			wantFindings: []scanner.Finding{finding("cmd/vigil/main.go", 7)},
		},
		{
			name: "expired waiver that matches nothing is reported on pass",
			policy: `waivers:
  - fingerprint: fp-gone
    reason: r
    owner: bob@example.com
    expires: 2025-06-30
  - rule: G101
    reason: r
    owner: bob@example.com
    expires: 2099-01-01
`,
			now: nextDay,
			want: &Decision{Pass, []Reason{
				{Code: CodePassed, Message: "no finding at or above high severity and low confidence; no findings"},
				{Code: CodeWaiverExpired, Message: "waivers[0] (.vigil.yaml:2) for fingerprint fp-gone, owned by bob@example.com, expired at the end of 2025-06-30 and no longer applies", Fingerprint: "fp-gone"},
			}},
			wantFindings: []scanner.Finding{},
		},
		{
			name: "waiver by fingerprint",
			policy: `waivers:
  - fingerprint: fp-a.go
    reason: accepted
    owner: o@example.com
    expires: 2026-01-31
`,
			now:      time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC),
			findings: []scanner.Finding{finding("a.go", 1), finding("b.go", 1)},
			want: &Decision{Fail, []Reason{
				{Code: CodeFinding, Message: "G404 (high severity, high confidence) at b.go:1: weak random", RuleID: "G404", File: "b.go", Line: 1, Fingerprint: "fp-b.go"},
			}},
			wantFindings: []scanner.Finding{
				with(finding("a.go", 1), func(f *scanner.Finding) {
					f.Suppressed = true
					f.Suppressions = []scanner.Suppression{{Kind: scanner.SuppressionExternal, Justification: "accepted", Owner: "o@example.com", Expires: "2026-01-31"}}
				}),
				finding("b.go", 1),
			},
		},
		{
			name: "suppressed in source never fails",
			findings: []scanner.Finding{with(finding("a.go", 1), func(f *scanner.Finding) {
				f.Suppressed, f.Suppressions = true, []scanner.Suppression{nosec}
			})},
			want: &Decision{Pass, []Reason{{Code: CodePassed, Message: "no finding at or above high severity and low confidence; 1 finding: 1 suppressed"}}},
			wantFindings: []scanner.Finding{with(finding("a.go", 1), func(f *scanner.Finding) {
				f.Suppressed, f.Suppressions = true, []scanner.Suppression{nosec}
			})},
		},
		{
			name: "a stale external suppression is removed, the in-source one kept",
			findings: []scanner.Finding{
				with(finding("a.go", 1), func(f *scanner.Finding) {
					f.Suppressed, f.Suppressions = true, []scanner.Suppression{waived}
				}),
				with(finding("b.go", 1), func(f *scanner.Finding) {
					f.Suppressed, f.Suppressions = true, []scanner.Suppression{nosec, waived}
				}),
			},
			want: &Decision{Fail, []Reason{
				{Code: CodeFinding, Message: "G404 (high severity, high confidence) at a.go:1: weak random", RuleID: "G404", File: "a.go", Line: 1, Fingerprint: "fp-a.go"},
			}},
			wantFindings: []scanner.Finding{
				finding("a.go", 1),
				with(finding("b.go", 1), func(f *scanner.Finding) {
					f.Suppressed, f.Suppressions = true, []scanner.Suppression{nosec}
				}),
			},
		},
		{
			name: "baseline: unchanged (even moved) passes, new fails",
			base: NewBaseline("fp-a.go"),
			findings: []scanner.Finding{
				finding("a.go", 40), // was at another line in the baseline scan
				finding("b.go", 1),
			},
			want: &Decision{Fail, []Reason{
				{Code: CodeFinding, Message: "G404 (high severity, high confidence) at b.go:1: weak random", RuleID: "G404", File: "b.go", Line: 1, Fingerprint: "fp-b.go"},
			}},
			wantFindings: []scanner.Finding{
				with(finding("a.go", 40), func(f *scanner.Finding) { f.Status = scanner.StatusUnchanged }),
				with(finding("b.go", 1), func(f *scanner.Finding) { f.Status = scanner.StatusNew }),
			},
		},
		{
			name: "no baseline clears a stale status",
			findings: []scanner.Finding{
				with(finding("a.go", 1), func(f *scanner.Finding) { f.Status = scanner.StatusUnchanged }),
			},
			want: &Decision{Fail, []Reason{
				{Code: CodeFinding, Message: "G404 (high severity, high confidence) at a.go:1: weak random", RuleID: "G404", File: "a.go", Line: 1, Fingerprint: "fp-a.go"},
			}},
			wantFindings: []scanner.Finding{finding("a.go", 1)},
		},
		{
			name:   "pass summary counts each finding once",
			policy: waiverPolicy,
			base:   NewBaseline("fp-cmd/x.go", "fp-b.go"),
			now:    endOfDay,
			findings: []scanner.Finding{
				finding("cmd/x.go", 1), // waived and unchanged: counted as suppressed
				finding("b.go", 1),
				with(finding("c.go", 1), func(f *scanner.Finding) { f.Severity = medium }),
			},
			want: &Decision{Pass, []Reason{{Code: CodePassed, Message: "no finding at or above high severity and low confidence; 3 findings: 1 suppressed, 1 unchanged, 1 below the thresholds"}}},
			wantFindings: []scanner.Finding{
				with(finding("b.go", 1), func(f *scanner.Finding) { f.Status = scanner.StatusUnchanged }),
				with(finding("c.go", 1), func(f *scanner.Finding) { f.Severity = medium; f.Status = scanner.StatusNew }),
				with(finding("cmd/x.go", 1), func(f *scanner.Finding) {
					f.Suppressed, f.Suppressions, f.Status = true, []scanner.Suppression{waived}, scanner.StatusUnchanged
				}),
			},
		},
		{
			name:   "licenses denied: plain ID, expression, case",
			policy: "licenses:\n  deny: [GPL-2.0-only, agpl-3.0-only]\n",
			sbom: &scanner.SBOM{Components: []scanner.Component{
				{Name: "zeta", Version: "1.0.0", Licenses: []string{"GPL-2.0-only"}},
				{Name: "alpha", Version: "2.1.0", Licenses: []string{"(MIT OR AGPL-3.0-ONLY)"}},
				{Name: "beta", Licenses: []string{"Apache-2.0", "gpl-2.0-only WITH Classpath-exception-2.0"}},
				{Name: "ok", Version: "1", Licenses: []string{"MIT", "GPL-2.0-or-later", "GPL-2.0+"}},
				{Name: "exception-only", Version: "1", Licenses: []string{"MIT WITH GPL-2.0-only"}},
				{Name: "unlicensed", Version: "1"},
			}},
			want: &Decision{Fail, []Reason{
				{Code: CodeLicenseDenied, Message: "component alpha@2.1.0 is under AGPL-3.0-ONLY, which the policy denies (declared: (MIT OR AGPL-3.0-ONLY))", Component: "alpha@2.1.0"},
				{Code: CodeLicenseDenied, Message: "component beta is under gpl-2.0-only, which the policy denies (declared: gpl-2.0-only WITH Classpath-exception-2.0)", Component: "beta"},
				{Code: CodeLicenseDenied, Message: "component zeta@1.0.0 is under GPL-2.0-only, which the policy denies", Component: "zeta@1.0.0"},
			}},
			wantFindings: []scanner.Finding{},
		},
		{
			name:   "licenses allowed",
			policy: "licenses:\n  deny: [GPL-2.0-only]\n",
			sbom: &scanner.SBOM{Components: []scanner.Component{
				{Name: "a", Version: "1", Licenses: []string{"MIT"}},
				{Name: "b", Version: "1", Licenses: []string{"LGPL-2.1-only"}},
			}},
			want:         &Decision{Pass, []Reason{{Code: CodePassed, Message: "no finding at or above high severity and low confidence; no findings; no component under a denied license (2 components)"}}},
			wantFindings: []scanner.Finding{},
		},
		{
			name:         "license deny list without an SBOM",
			policy:       "licenses:\n  deny: [GPL-2.0-only]\n",
			want:         &Decision{Pass, []Reason{{Code: CodePassed, Message: "no finding at or above high severity and low confidence; no findings; no SBOM, so licenses were not checked"}}},
			wantFindings: []scanner.Finding{},
		},
		{
			name:     "findings before licenses before expired waivers",
			policy:   "licenses:\n  deny: [GPL-2.0-only]\n" + waiverPolicy,
			now:      nextDay,
			findings: []scanner.Finding{with(finding("a.go", 1), func(f *scanner.Finding) { f.RuleID = "G101" })},
			sbom:     &scanner.SBOM{Components: []scanner.Component{{Name: "x", Version: "1", Licenses: []string{"GPL-2.0-only"}}}},
			want: &Decision{Fail, []Reason{
				{Code: CodeFinding, Message: "G101 (high severity, high confidence) at a.go:1: weak random", RuleID: "G101", File: "a.go", Line: 1, Fingerprint: "fp-a.go"},
				{Code: CodeLicenseDenied, Message: "component x@1 is under GPL-2.0-only, which the policy denies", Component: "x@1"},
				{Code: CodeWaiverExpired, Message: "waivers[0] (.vigil.yaml:4) for rule G404 on cmd/**, owned by sec@example.com, expired at the end of 2026-12-31 and no longer applies", RuleID: "G404"},
			}},
			wantFindings: []scanner.Finding{with(finding("a.go", 1), func(f *scanner.Finding) { f.RuleID = "G101" })},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var p *Policy
			if tt.policy != "" {
				p = policy(t, tt.policy)
			}
			res := &scanner.Result{Findings: append([]scanner.Finding{}, tt.findings...), SBOM: tt.sbom}
			got := Evaluate(res, p, tt.base, tt.now)
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("Evaluate (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(res.Findings, tt.wantFindings); diff != "" {
				t.Errorf("res.Findings (-got +want):\n%s", diff)
			}
		})
	}
}

// TestEvaluateAgain checks that evaluating a stored result again, once its
// waiver has expired, no longer suppresses the finding.
func TestEvaluateAgain(t *testing.T) {
	t.Parallel()
	p := policy(t, "waivers:\n  - rule: G404\n    reason: r\n    owner: o\n    expires: 2026-03-01\n")
	res := &scanner.Result{Findings: []scanner.Finding{finding("a.go", 1)}}

	first := Evaluate(res, p, nil, time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	again := Evaluate(res, p, nil, time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC))
	if diff := cmp.Diff(again, first); diff != "" {
		t.Errorf("evaluating twice differs (-again +first):\n%s", diff)
	}
	if got, want := len(res.Findings[0].Suppressions), 1; got != want {
		t.Errorf("after two evaluations, %d suppressions, want %d", got, want)
	}

	later := Evaluate(res, p, nil, time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC))
	if got := []string{first.Decision, later.Decision}; !cmp.Equal(got, []string{Pass, Fail}) {
		t.Errorf("decisions before and after expiry = %v, want [pass fail]", got)
	}
	if f := res.Findings[0]; f.Suppressed || f.Suppressions != nil {
		t.Errorf("after expiry the finding is still suppressed: %+v", f)
	}
}

func TestEvaluateBaselineFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
	}{
		{name: "vigil JSON", content: `{"findings": [{"rule_id": "G404", "file": "a.go", "line": 3, "fingerprint": "fp-a.go"}]}`},
		{name: "SARIF", content: `{"version": "2.1.0", "runs": [{"results": [{"ruleId": "G404", "locations": [{"physicalLocation": {"region": {"startLine": 3}}}], "partialFingerprints": {"` + scanner.FingerprintKey + `": "fp-a.go"}}]}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			base, err := LoadBaseline(writeFile(t, "baseline.json", tt.content))
			if err != nil {
				t.Fatalf("LoadBaseline: %v", err)
			}
			res := &scanner.Result{Findings: []scanner.Finding{finding("a.go", 12), finding("b.go", 1)}}
			d := Evaluate(res, nil, base, time.Now())
			var got []string
			for _, f := range res.Findings {
				got = append(got, fmt.Sprintf("%s:%d %s", f.File, f.Line, f.Status))
			}
			if diff := cmp.Diff(got, []string{"a.go:12 unchanged", "b.go:1 new"}); diff != "" {
				t.Errorf("statuses (-got +want):\n%s", diff)
			}
			want := []Reason{{Code: CodeFinding, Message: "G404 (high severity, high confidence) at b.go:1: weak random", RuleID: "G404", File: "b.go", Line: 1, Fingerprint: "fp-b.go"}}
			if diff := cmp.Diff(d.Reasons, want); diff != "" {
				t.Errorf("reasons (-got +want):\n%s", diff)
			}
		})
	}
}

func TestEvaluateNilResult(t *testing.T) {
	t.Parallel()
	d := Evaluate(nil, nil, nil, time.Now())
	if d.Decision != Unknown || d.Passed() || len(d.Reasons) != 1 || d.Reasons[0].Code != CodeNoResult {
		t.Errorf("Evaluate(nil) = %+v, want unknown with a NO_RESULT reason", d)
	}
}

func TestLicenseIDs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expr string
		want []string
	}{
		{"MIT", []string{"MIT"}},
		{"MIT OR Apache-2.0", []string{"MIT", "Apache-2.0"}},
		{"(MIT or Apache-2.0) AND BSD-3-Clause", []string{"MIT", "Apache-2.0", "BSD-3-Clause"}},
		{"GPL-2.0-only WITH Classpath-exception-2.0 OR MIT", []string{"GPL-2.0-only", "MIT"}},
		{"((LGPL-2.1+))", []string{"LGPL-2.1+"}},
		{"", nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(licenseIDs(tt.expr), tt.want); diff != "" {
			t.Errorf("licenseIDs(%q) (-got +want):\n%s", tt.expr, diff)
		}
	}
}

// TestEvaluateUnanalysed checks that a part of the target that no engine
// analysed fails the gate by default, whatever the findings say, and that
// only the policy can let it pass, with the reason kept.
func TestEvaluateUnanalysed(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	result := func() *scanner.Result {
		return &scanner.Result{
			Findings: []scanner.Finding{},
			Unanalysed: []scanner.Unanalysed{
				{Engine: "sast", Path: "svc", Reason: "go: errors parsing go.mod"},
			},
		}
	}
	wantReason := Reason{
		Code:    CodeNotAnalysed,
		Message: "sast could not analyse svc, so nothing is known about it: go: errors parsing go.mod",
		Engine:  "sast",
		Path:    "svc",
	}
	tests := []struct {
		name        string
		policy      *Policy
		wantDecided string
		wantCodes   []string
	}{
		{"nil policy", nil, Fail, []string{CodeNotAnalysed}},
		{"default policy", DefaultPolicy(), Fail, []string{CodeNotAnalysed}},
		{"fail", policy(t, "unanalysed: fail\n"), Fail, []string{CodeNotAnalysed}},
		// Thresholds that fail nothing do not let an unanalysed part pass.
		{"nothing fails on findings", policy(t, "fail_on: {severity: high, confidence: high}\nrules: {exclude: [G404]}\n"), Fail, []string{CodeNotAnalysed}},
		{"warn", policy(t, "unanalysed: warn\n"), Pass, []string{CodePassed, CodeNotAnalysed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := Evaluate(result(), tt.policy, nil, now)
			var codes []string
			for _, r := range d.Reasons {
				codes = append(codes, r.Code)
				if r.Code == CodeNotAnalysed {
					if diff := cmp.Diff(r, wantReason); diff != "" {
						t.Errorf("NOT_ANALYSED reason (-got +want):\n%s", diff)
					}
				}
			}
			if d.Decision != tt.wantDecided || !cmp.Equal(codes, tt.wantCodes) {
				t.Errorf("decision %s with %v; want %s with %v", d.Decision, codes, tt.wantDecided, tt.wantCodes)
			}
		})
	}
	t.Run("with a failing finding", func(t *testing.T) {
		t.Parallel()
		res := result()
		res.Findings = []scanner.Finding{finding("main.go", 3)}
		d := Evaluate(res, nil, nil, now)
		if d.Decision != Fail || len(d.Reasons) != 2 || d.Reasons[0].Code != CodeFinding || d.Reasons[1].Code != CodeNotAnalysed {
			t.Errorf("decision %+v; want fail with FINDING and NOT_ANALYSED", d)
		}
	})
	t.Run("root", func(t *testing.T) {
		t.Parallel()
		res := &scanner.Result{Unanalysed: []scanner.Unanalysed{{Engine: "sast", Path: ".", Reason: "r"}}}
		d := Evaluate(res, nil, nil, now)
		if d.Decision != Fail || d.Reasons[0].Message != "sast could not analyse the target's root, so nothing is known about it: r" {
			t.Errorf("decision %+v; want a failure naming the target's root", d)
		}
	})
}
