package ci

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-sec/vigil/scanner"
)

func date(s string) time.Time {
	t, err := time.Parse(dateLayout, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestParsePolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want *Policy
	}{
		{
			name: "empty file gives the defaults",
			yaml: "",
			want: &Policy{Source: "p.yaml", FailOn: Thresholds{Severity: scanner.LevelHigh, Confidence: scanner.LevelLow}},
		},
		{
			name: "comments only gives the defaults",
			yaml: "# nothing yet\n",
			want: &Policy{Source: "p.yaml", FailOn: Thresholds{Severity: scanner.LevelHigh, Confidence: scanner.LevelLow}},
		},
		{
			name: "only confidence set keeps the default severity",
			yaml: "fail_on:\n  confidence: MEDIUM\n",
			want: &Policy{Source: "p.yaml", FailOn: Thresholds{Severity: scanner.LevelHigh, Confidence: scanner.LevelMedium}},
		},
		{
			name: "everything",
			yaml: `fail_on:
  severity: medium
  confidence: high
rules:
  exclude: [G104, G307]
paths:
  exclude: ["**/testdata/**", "vendor/**"]
licenses:
  deny: [AGPL-3.0-only, GPL-2.0-only]
waivers:
  - rule: G404
    path: "cmd/**"
    reason: math/rand is not used for secrets here
    owner: security@example.com
    expires: 2026-12-31
  - fingerprint: "abc123"
    reason: accepted risk
    owner: alice@example.com
    expires: "2027-01-15"
`,
			want: &Policy{
				Source:   "p.yaml",
				FailOn:   Thresholds{Severity: scanner.LevelMedium, Confidence: scanner.LevelHigh},
				Rules:    RuleFilter{Exclude: []string{"G104", "G307"}},
				Paths:    PathFilter{Exclude: []string{"**/testdata/**", "vendor/**"}},
				Licenses: LicensePolicy{Deny: []string{"AGPL-3.0-only", "GPL-2.0-only"}},
				Waivers: []Waiver{
					{Rule: "G404", Path: "cmd/**", Reason: "math/rand is not used for secrets here", Owner: "security@example.com", Expires: date("2026-12-31"), Line: 11},
					{Fingerprint: "abc123", Reason: "accepted risk", Owner: "alice@example.com", Expires: date("2027-01-15"), Line: 16},
				},
			},
		},
		{
			name: "unanalysed parts warn",
			yaml: "unanalysed: WARN\n",
			want: &Policy{Source: "p.yaml", FailOn: Thresholds{Severity: scanner.LevelHigh, Confidence: scanner.LevelLow}, Unanalysed: UnanalysedWarn},
		},
		{
			name: "unanalysed parts fail",
			yaml: "unanalysed: fail\n",
			want: &Policy{Source: "p.yaml", FailOn: Thresholds{Severity: scanner.LevelHigh, Confidence: scanner.LevelLow}, Unanalysed: UnanalysedFail},
		},
		{
			name: "empty lists and anchors",
			yaml: "rules:\n  exclude:\nwaivers: []\npaths:\n  exclude: &globs [\"gen/**\"]\n",
			want: &Policy{
				Source: "p.yaml",
				FailOn: Thresholds{Severity: scanner.LevelHigh, Confidence: scanner.LevelLow},
				Paths:  PathFilter{Exclude: []string{"gen/**"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParsePolicy("p.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatalf("ParsePolicy: %v", err)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("ParsePolicy (-got +want):\n%s", diff)
			}
		})
	}
}

func TestParsePolicyErrors(t *testing.T) {
	t.Parallel()
	const waiverOK = "    reason: r\n    owner: o@example.com\n    expires: 2026-12-31\n"
	tests := []struct {
		name string
		yaml string
		want PolicyError // Msg is matched as a substring
	}{
		{
			name: "unknown top-level field",
			yaml: "fail_on:\n  severity: high\nfail_onn: {}\n",
			want: PolicyError{Line: 3, Field: "fail_onn", Msg: "unknown field"},
		},
		{
			name: "unanalysed neither fail nor warn",
			yaml: "fail_on:\n  severity: high\nunanalysed: ignore\n",
			want: PolicyError{Line: 3, Field: "unanalysed", Msg: `"ignore": want fail or warn`},
		},
		{
			name: "unanalysed not a scalar",
			yaml: "unanalysed: [warn]\n",
			want: PolicyError{Line: 1, Field: "unanalysed", Msg: "want a single value"},
		},
		{
			name: "unknown nested field",
			yaml: "fail_on:\n  severity: high\n  sevrity: low\n",
			want: PolicyError{Line: 3, Field: "fail_on.sevrity", Msg: "unknown field"},
		},
		{
			name: "unknown waiver field",
			yaml: "waivers:\n  - rule: G404\n" + waiverOK + "    expiry: 2026-01-01\n",
			want: PolicyError{Line: 6, Field: "waivers[0].expiry", Msg: "unknown field"},
		},
		{
			name: "duplicate field",
			yaml: "rules:\n  exclude: [G1]\nrules:\n  exclude: [G2]\n",
			want: PolicyError{Line: 3, Field: "rules", Msg: "already set at line 1"},
		},
		{
			name: "bad severity",
			yaml: "fail_on:\n  severity: critical\n",
			want: PolicyError{Line: 2, Field: "fail_on.severity", Msg: `unknown level "critical"`},
		},
		{
			name: "bad confidence",
			yaml: "fail_on:\n  confidence: [low]\n",
			want: PolicyError{Line: 2, Field: "fail_on.confidence", Msg: "want a single value"},
		},
		{
			name: "bad exclude glob",
			yaml: "paths:\n  exclude:\n    - \"ok/**\"\n    - \"bad/[\"\n",
			want: PolicyError{Line: 4, Field: "paths.exclude[1]", Msg: "invalid glob"},
		},
		{
			name: "bad waiver glob",
			yaml: "waivers:\n  - rule: G404\n    path: \"{cmd\"\n" + waiverOK,
			want: PolicyError{Line: 3, Field: "waivers[0].path", Msg: "invalid glob"},
		},
		{
			name: "bad date",
			yaml: "waivers:\n  - rule: G404\n    reason: r\n    owner: o\n    expires: 2026-02-30\n",
			want: PolicyError{Line: 5, Field: "waivers[0].expires", Msg: "want YYYY-MM-DD"},
		},
		{
			name: "date in another layout",
			yaml: "waivers:\n  - rule: G404\n    reason: r\n    owner: o\n    expires: 31/12/2026\n",
			want: PolicyError{Line: 5, Field: "waivers[0].expires", Msg: "want YYYY-MM-DD"},
		},
		{
			name: "waiver missing owner",
			yaml: "waivers:\n  - rule: G1\n" + waiverOK + "  - rule: G404\n    reason: r\n    expires: 2026-12-31\n",
			want: PolicyError{Line: 6, Field: "waivers[1].owner", Msg: "required"},
		},
		{
			name: "waiver missing reason",
			yaml: "waivers:\n  - rule: G404\n    owner: o\n    expires: 2026-12-31\n",
			want: PolicyError{Line: 2, Field: "waivers[0].reason", Msg: "required"},
		},
		{
			name: "waiver with empty reason",
			yaml: "waivers:\n  - rule: G404\n    reason: \"  \"\n    owner: o\n    expires: 2026-12-31\n",
			want: PolicyError{Line: 2, Field: "waivers[0].reason", Msg: "required"},
		},
		{
			name: "waiver missing expires",
			yaml: "waivers:\n  - rule: G404\n    reason: r\n    owner: o\n",
			want: PolicyError{Line: 2, Field: "waivers[0].expires", Msg: "required"},
		},
		{
			name: "waiver with neither rule nor fingerprint",
			yaml: "waivers:\n  - path: \"cmd/**\"\n" + waiverOK,
			want: PolicyError{Line: 2, Field: "waivers[0]", Msg: "want a rule or a fingerprint"},
		},
		{
			name: "waivers not a list",
			yaml: "waivers:\n  rule: G404\n",
			want: PolicyError{Line: 2, Field: "waivers", Msg: "want a list"},
		},
		{
			name: "license expression in deny list",
			yaml: "licenses:\n  deny: [\"MIT OR GPL-2.0-only\"]\n",
			want: PolicyError{Line: 2, Field: "licenses.deny[0]", Msg: "not a single SPDX license ID"},
		},
		{
			name: "top level not a mapping",
			yaml: "- fail_on\n",
			want: PolicyError{Line: 1, Field: "", Msg: "want a mapping"},
		},
		{
			name: "YAML syntax error",
			yaml: "fail_on:\n  severity: high\nrules\n  exclude: [G104\n",
			want: PolicyError{Line: 3, Field: "", Msg: "invalid YAML"},
		},
		{
			name: "two documents",
			yaml: "fail_on: {}\n---\nrules: {}\n",
			want: PolicyError{Line: 2, Field: "", Msg: "more than one YAML document"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParsePolicy(".vigil.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatal("ParsePolicy: no error")
			}
			if !errors.Is(err, scanner.ErrUsage) {
				t.Errorf("errors.Is(%v, scanner.ErrUsage) = false", err)
			}
			pe, ok := errors.AsType[*PolicyError](err)
			if !ok {
				t.Fatalf("error %T is not a *PolicyError: %v", err, err)
			}
			got := PolicyError{File: pe.File, Line: pe.Line, Field: pe.Field}
			want := PolicyError{File: ".vigil.yaml", Line: tt.want.Line, Field: tt.want.Field}
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("error %q (-got +want):\n%s", err, diff)
			}
			if !strings.Contains(pe.Msg, tt.want.Msg) {
				t.Errorf("message %q does not contain %q", pe.Msg, tt.want.Msg)
			}
			prefix := ".vigil.yaml:" + strconv.Itoa(tt.want.Line) + ": "
			if tt.want.Field != "" {
				prefix += tt.want.Field + ": "
			}
			if !strings.HasPrefix(err.Error(), "policy "+prefix) {
				t.Errorf("Error() = %q, want it to start with %q", err, "policy "+prefix)
			}
		})
	}
}

func TestPolicyErrorMessage(t *testing.T) {
	t.Parallel()
	err := &PolicyError{File: ".vigil.yaml", Line: 12, Field: "waivers[1].owner", Msg: "required"}
	if got, want := err.Error(), "policy .vigil.yaml:12: waivers[1].owner: required"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestLoadPolicy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, ".vigil.yaml")
	if err := os.WriteFile(path, []byte("fail_on:\n  severity: medium\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := LoadPolicy(path)
	if err != nil {
		t.Fatalf("LoadPolicy: %v", err)
	}
	want := &Policy{Source: path, FailOn: Thresholds{Severity: scanner.LevelMedium, Confidence: scanner.LevelLow}}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("LoadPolicy (-got +want):\n%s", diff)
	}
}

func TestLoadPolicyErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte("#"+strings.Repeat("x", MaxPolicySize)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		path     string
		notExist bool
	}{
		{name: "missing file", path: filepath.Join(dir, "missing.yaml"), notExist: true},
		{name: "too large", path: big},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadPolicy(tt.path)
			if err == nil {
				t.Fatal("LoadPolicy: no error")
			}
			if !errors.Is(err, scanner.ErrUsage) {
				t.Errorf("errors.Is(%v, scanner.ErrUsage) = false", err)
			}
			if got := errors.Is(err, fs.ErrNotExist); got != tt.notExist {
				t.Errorf("errors.Is(%v, fs.ErrNotExist) = %v, want %v", err, got, tt.notExist)
			}
			if !strings.Contains(err.Error(), tt.path) {
				t.Errorf("error %q does not name %s", err, tt.path)
			}
		})
	}
}
