package ci_test

import (
	"fmt"
	"log"
	"time"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/scanner"
)

func ExampleEvaluate() {
	policy, err := ci.ParsePolicy(".vigil.yaml", []byte(`
fail_on:
  severity: medium
paths:
  exclude: ["**/testdata/**"]
waivers:
  - rule: G404
    path: "cmd/**"
    reason: math/rand is not used for secrets here
    owner: security@example.com
    expires: 2026-06-30
`))
	if err != nil {
		log.Fatal(err) // a *ci.PolicyError: file, line and field
	}

	// The target branch's scan had the G101 finding already.
	base := ci.NewBaseline("fp-creds")

	res := &scanner.Result{Findings: []scanner.Finding{
		{RuleID: "G404", Severity: scanner.LevelHigh, Confidence: scanner.LevelMedium, File: "cmd/vigil/main.go", Line: 12, Message: "Use of weak random number generator", Fingerprint: "fp-rand"},
		{RuleID: "G101", Severity: scanner.LevelHigh, Confidence: scanner.LevelLow, File: "internal/creds.go", Line: 40, Message: "Potential hardcoded credentials", Fingerprint: "fp-creds"},
		{RuleID: "G304", Severity: scanner.LevelLow, Confidence: scanner.LevelHigh, File: "internal/load.go", Line: 7, Message: "Potential file inclusion via variable", Fingerprint: "fp-load"},
		{RuleID: "G304", Severity: scanner.LevelMedium, Confidence: scanner.LevelHigh, File: "internal/testdata/x.go", Line: 3, Message: "Potential file inclusion via variable", Fingerprint: "fp-test"},
	}}

	for _, now := range []time.Time{
		time.Date(2026, 6, 30, 18, 0, 0, 0, time.UTC), // the waiver's last day
		time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC),   // the day after
	} {
		d := ci.Evaluate(res, policy, base, now)
		fmt.Println(now.Format(time.DateOnly), d.Decision)
		for _, r := range d.Reasons {
			fmt.Printf("  %s: %s\n", r.Code, r.Message)
		}
	}
	// Output:
	// 2026-06-30 pass
	//   PASSED: no finding at or above medium severity and low confidence; 3 findings: 1 suppressed, 1 unchanged, 1 below the thresholds; 1 excluded by the policy
	// 2026-07-01 fail
	//   FINDING: G404 (high severity, medium confidence) at cmd/vigil/main.go:12: Use of weak random number generator (waivers[0] expired at the end of 2026-06-30)
	//   WAIVER_EXPIRED: waivers[0] (.vigil.yaml:7) for rule G404 on cmd/**, owned by security@example.com, expired at the end of 2026-06-30 and no longer applies
}
