// Package ci is Vigil's pipeline: the gate that decides whether a scan
// result passes, and the Service that runs scans and judges them.
//
// The Service (service.go) enqueues scans of commits and images, runs them
// (RunScan: check out or pull, run the engines, store the reports, record
// a gate summary and the project's tracked findings), decides gates
// (CommitGate, ImageGate, Judge, Decide: cached under everything a
// decision depends on), posts commit statuses, schedules rescans,
// manages projects, policies, waivers and findings, and says which scan
// stands for a commit, an image or a default branch (lookup.go: what the
// releases of package reports are made of). It works on the
// pipeline's records (model.go: Project, Scan, TrackedFinding,
// ProjectWaiver, GateState…) through the Store it declares, which
// internal/store implements; the HTTP API, the push and registry hooks,
// the admission webhook and the job queue only call it.
//
// The gate itself is pure: three inputs meet in Evaluate:
//
//   - a Policy (LoadPolicy reads one from YAML, DefaultPolicy is used when
//     there is none): the severity and confidence thresholds at or above
//     which a finding fails the gate, the rules and paths to exclude, the
//     licenses to deny, and waivers. Every waiver has a reason, an owner
//     and an expiry date; it applies until the end of that day (UTC), and
//     once expired it stops applying and the decision says so. A policy
//     that cannot be used is a *PolicyError naming the file, line and
//     field, and is a scanner.ErrUsage;
//   - an optional Baseline (LoadBaseline reads Vigil's JSON scan output or
//     SARIF 2.1.0): findings whose fingerprint is in it are unchanged and
//     never fail the gate, so a change gate fails only on what the change
//     introduced;
//   - the scanner.Result, whose findings Evaluate marks as suppressed, new
//     or unchanged.
//
// The outcome is a Decision, pass or fail, always with Reasons that say
// why: the findings and components that failed, or a summary when nothing
// did, and every expired waiver.
//
// A policy file looks like this:
//
//	fail_on:
//	  severity: high       # default high
//	  confidence: medium   # default low
//	rules:
//	  exclude: [G104]
//	paths:
//	  exclude: ["**/testdata/**"]
//	licenses:
//	  deny: [AGPL-3.0-only, GPL-2.0-only]
//	waivers:
//	  - rule: G404
//	    path: "cmd/**"     # optional: every path by default
//	    reason: math/rand is not used for secrets here
//	    owner: security@example.com
//	    expires: 2026-12-31
//	  - fingerprint: "…"
//	    reason: …
//	    owner: …
//	    expires: …
//
// Fields in errors and reasons index lists from zero: waivers[0] is the
// first waiver.
package ci
