package ci_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/scanner"
)

func mustParse(t *testing.T, name, doc string) *ci.Policy {
	t.Helper()
	p, err := ci.ParsePolicy(name, []byte(doc))
	if err != nil {
		t.Fatalf("ParsePolicy(%s): %v", name, err)
	}
	return p
}

// combineResult has a high/high G404 in main.go and a medium/high G304 in
// gen/x.go.
func combineResult() *scanner.Result {
	return &scanner.Result{Findings: []scanner.Finding{
		{RuleID: "G404", Severity: scanner.LevelHigh, Confidence: scanner.LevelHigh, File: "main.go", Line: 3, Fingerprint: "f1"},
		{RuleID: "G304", Severity: scanner.LevelMedium, Confidence: scanner.LevelHigh, File: "gen/x.go", Line: 4, Fingerprint: "f2"},
	}}
}

func TestCombine(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
	const repoLax = `fail_on: {severity: high, confidence: high}
rules: {exclude: [G404]}
paths: {exclude: ["gen/**"]}
`
	const repoWaiver = `waivers:
  - rule: G404
    reason: seeded for a test fixture
    owner: alice
    expires: 2026-12-31
`
	const repoExpired = `waivers:
  - rule: G404
    reason: old
    owner: alice
    expires: 2026-01-31
`
	tests := []struct {
		name         string
		server, repo string // "" is none
		wantOrigin   ci.Origin
		wantDecision string
		wantFailing  []string // rules of FINDING reasons
	}{
		{"no policy at all", "", "", ci.OriginServer, ci.Fail, []string{"G404"}},
		{"default server takes the repository as is", "", repoLax, ci.OriginRepository, ci.Pass, nil},
		{"a server policy equal to the defaults is the default", "fail_on:\n  severity: high\n", repoLax, ci.OriginRepository, ci.Pass, nil},
		{"the repository cannot loosen a set server policy", "fail_on: {severity: medium}\n", repoLax, ci.OriginCombined, ci.Fail, []string{"G304", "G404"}},
		{"the repository can tighten it", "licenses: {deny: [GPL-3.0-only]}\n", "fail_on: {severity: medium}\n", ci.OriginCombined, ci.Fail, []string{"G304", "G404"}},
		{"exclusions only when the server allows them", "fail_on: {severity: medium}\nrepository: {allow_exclusions: true}\n", repoLax, ci.OriginCombined, ci.Pass, nil},
		{"ignore uses the server policy alone", "repository: {ignore: true}\n", repoWaiver, ci.OriginServer, ci.Fail, []string{"G404"}},
		{"a repository waiver applies to a set server policy", "fail_on: {severity: high}\nlicenses: {deny: [MIT]}\n", repoWaiver, ci.OriginCombined, ci.Pass, nil},
		{"unless the server ignores repository waivers", "repository: {ignore_waivers: true}\n", repoWaiver, ci.OriginCombined, ci.Fail, []string{"G404"}},
		{"an expired repository waiver does not apply", "licenses: {deny: [MIT]}\n", repoExpired, ci.OriginCombined, ci.Fail, []string{"G404"}},
		{"the repository's own repository section grants nothing", "fail_on: {severity: medium}\n", repoLax + "repository: {allow_exclusions: true}\n", ci.OriginCombined, ci.Fail, []string{"G304", "G404"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var server, repo *ci.Policy
			if tt.server != "" {
				server = mustParse(t, "policy v1 of app", tt.server)
			}
			if tt.repo != "" {
				repo = mustParse(t, ".vigil.yaml", tt.repo)
			}
			var serverBefore, repoBefore string
			if server != nil {
				serverBefore = cmp.Diff(nil, server)
			}
			if repo != nil {
				repoBefore = cmp.Diff(nil, repo)
			}
			pol, origin := ci.Combine(server, repo)
			if origin != tt.wantOrigin {
				t.Errorf("origin = %s, want %s", origin, tt.wantOrigin)
			}
			d := ci.Evaluate(combineResult(), pol, nil, at)
			var failing []string
			for _, r := range d.Reasons {
				if r.Code == ci.CodeFinding {
					failing = append(failing, r.RuleID)
				}
			}
			if d.Decision != tt.wantDecision || !cmp.Equal(failing, tt.wantFailing) {
				t.Errorf("decision = %s failing on %v, want %s on %v; reasons %+v", d.Decision, failing, tt.wantDecision, tt.wantFailing, d.Reasons)
			}
			if server != nil && cmp.Diff(nil, server) != serverBefore {
				t.Error("Combine changed the server's policy")
			}
			if repo != nil && cmp.Diff(nil, repo) != repoBefore {
				t.Error("Combine changed the repository's policy")
			}
		})
	}
}

func TestCombineNamesTheFileOfAnExpiredWaiver(t *testing.T) {
	t.Parallel()
	server := mustParse(t, "policy v2 of app", "licenses: {deny: [MIT]}\n")
	repo := mustParse(t, ".vigil.yaml at abc123", "waivers:\n  - rule: G404\n    reason: old\n    owner: alice\n    expires: 2026-01-31\n")
	pol, _ := ci.Combine(server, repo)
	d := ci.Evaluate(combineResult(), pol, nil, time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC))
	found := false
	for _, r := range d.Reasons {
		if r.Code == ci.CodeWaiverExpired {
			found = true
			if !strings.Contains(r.Message, ".vigil.yaml at abc123:2") {
				t.Errorf("expired waiver reason %q does not name the repository file", r.Message)
			}
		}
	}
	if !found {
		t.Errorf("no WAIVER_EXPIRED reason in %+v", d.Reasons)
	}
}

func TestRepositorySectionParses(t *testing.T) {
	t.Parallel()
	p := mustParse(t, "p", "repository:\n  ignore: false\n  allow_exclusions: true\n  ignore_waivers: true\n")
	if want := (ci.RepositoryRules{AllowExclusions: true, IgnoreWaivers: true}); p.Repository != want {
		t.Errorf("Repository = %+v, want %+v", p.Repository, want)
	}
	for doc, field := range map[string]string{
		"repository: {ignore: yes-please}\n": "repository.ignore",
		"repository: {trust: true}\n":        "repository.trust",
		"repository: [ignore]\n":             "repository",
	} {
		_, err := ci.ParsePolicy("p", []byte(doc))
		var pe *ci.PolicyError
		if !errors.As(err, &pe) || pe.Field != field {
			t.Errorf("ParsePolicy(%q) = %v, want a PolicyError on %s", doc, err, field)
		}
	}
}

// TestCombineUnanalysed: a part nobody analysed warns only when both the
// project's policy and the repository's file say so.
func TestCombineUnanalysed(t *testing.T) {
	t.Parallel()
	strict := func(u string) *ci.Policy {
		p := ci.DefaultPolicy()
		p.FailOn.Severity = scanner.LevelMedium
		p.Unanalysed = u
		return p
	}
	repo := func(u string) *ci.Policy { p := ci.DefaultPolicy(); p.Unanalysed = u; return p }
	for _, tc := range []struct{ server, repo, want string }{
		{ci.UnanalysedWarn, ci.UnanalysedWarn, ci.UnanalysedWarn},
		{ci.UnanalysedWarn, "", ""},
		{ci.UnanalysedWarn, ci.UnanalysedFail, ci.UnanalysedFail},
		{"", ci.UnanalysedWarn, ""},
		{ci.UnanalysedFail, ci.UnanalysedWarn, ci.UnanalysedFail},
	} {
		got, origin := ci.Combine(strict(tc.server), repo(tc.repo))
		if origin != ci.OriginCombined || got.Unanalysed != tc.want {
			t.Errorf("ci.Combine(server %q, repo %q) = %q (%s), want %q (combined)", tc.server, tc.repo, got.Unanalysed, origin, tc.want)
		}
	}
	// A project policy that only says "fail" is the default one: the
	// repository's file decides, as vigil scan would.
	if got, origin := ci.Combine(repo(ci.UnanalysedFail), repo(ci.UnanalysedWarn)); origin != ci.OriginRepository || got.Unanalysed != ci.UnanalysedWarn {
		t.Errorf("default server policy: got %q (%s), want warn (repository)", got.Unanalysed, origin)
	}
}
