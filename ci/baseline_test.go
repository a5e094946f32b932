package ci

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-sec/vigil/scanner"
)

// writeFile writes content to name in a fresh temp dir and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// fingerprints lists a baseline's fingerprints, sorted.
func fingerprints(b *Baseline) []string {
	var out []string
	for fp := range b.fps {
		out = append(out, fp)
	}
	slices.Sort(out)
	return out
}

const vigilJSON = `{
  "target": {"kind": "dir", "ref": "."},
  "findings": [
    {"engine": "sast", "rule_id": "G404", "file": "a.go", "line": 3, "fingerprint": "fp-a"},
    {"engine": "sast", "rule_id": "G101", "file": "b.go", "line": 9, "fingerprint": "fp-b"},
    {"engine": "sast", "rule_id": "G101", "file": "c.go", "line": 1, "fingerprint": ""}
  ]
}`

const sarifJSON = `{
  "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
  "version": "2.1.0",
  "runs": [
    {
      "tool": {"driver": {"name": "vigil"}},
      "results": [
        {"ruleId": "G404", "partialFingerprints": {"` + scanner.FingerprintKey + `": "fp-a", "primaryLocationLineHash": "x"}},
        {"ruleId": "G101", "partialFingerprints": {"other/v1": "fp-z"}},
        {"ruleId": "G101"}
      ]
    },
    {
      "tool": {"driver": {"name": "vigil"}},
      "results": [
        {"ruleId": "G102", "partialFingerprints": {"` + scanner.FingerprintKey + `": "fp-c"}}
      ]
    }
  ]
}`

func TestLoadBaseline(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
		want    []string
	}{
		{name: "vigil JSON", content: vigilJSON, want: []string{"fp-a", "fp-b"}},
		{name: "vigil JSON without findings", content: `{"findings": []}`, want: nil},
		{name: "SARIF", content: sarifJSON, want: []string{"fp-a", "fp-c"}},
		{name: "SARIF without results", content: `{"version": "2.1.0", "runs": []}`, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, "baseline.json", tt.content)
			b, err := LoadBaseline(path)
			if err != nil {
				t.Fatalf("LoadBaseline: %v", err)
			}
			if diff := cmp.Diff(fingerprints(b), tt.want); diff != "" {
				t.Errorf("fingerprints (-got +want):\n%s", diff)
			}
			if b.Source != path {
				t.Errorf("Source = %q, want %q", b.Source, path)
			}
		})
	}
}

func TestLoadBaselineErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string // ignored when missing
		missing bool
		want    string // a substring of the error
	}{
		{name: "missing file", missing: true, want: "no such file"},
		{name: "not JSON", content: "findings:\n  - fingerprint: x\n", want: "not a JSON object"},
		{name: "JSON array", content: `[{"fingerprint": "x"}]`, want: "not a JSON object"},
		{name: "other JSON object", content: `{"bomFormat": "CycloneDX"}`, want: "unrecognised format"},
		{name: "old SARIF", content: `{"version": "2.0.0", "runs": []}`, want: `SARIF version "2.0.0" is not supported`},
		{name: "findings not a list", content: `{"findings": {"fingerprint": "x"}}`, want: "invalid Vigil scan output"},
		{name: "SARIF runs not a list", content: `{"version": "2.1.0", "runs": 1}`, want: "invalid SARIF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "missing.json")
			if !tt.missing {
				path = writeFile(t, "base.json", tt.content)
			}
			_, err := LoadBaseline(path)
			if err == nil {
				t.Fatal("LoadBaseline: no error")
			}
			if !errors.Is(err, scanner.ErrUsage) {
				t.Errorf("errors.Is(%v, scanner.ErrUsage) = false", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, path) || !strings.Contains(msg, tt.want) {
				t.Errorf("error %q: want it to name %s and say %q", msg, path, tt.want)
			}
			if !tt.missing && (!strings.Contains(msg, "SARIF 2.1.0") || !strings.Contains(msg, "Vigil's JSON")) {
				t.Errorf("error %q does not say which formats are accepted", msg)
			}
		})
	}
}

func TestLoadBaselineTooLarge(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "big.json", vigilJSON)
	_, err := loadBaseline(path, int64(len(vigilJSON)-1))
	if !errors.Is(err, scanner.ErrUsage) || !strings.Contains(err.Error(), "larger than the limit") {
		t.Errorf("loadBaseline over the limit: %v, want a usage error about the size", err)
	}
	if _, err := loadBaseline(path, int64(len(vigilJSON))); err != nil {
		t.Errorf("loadBaseline at the limit: %v", err)
	}
}

func TestBaselineContains(t *testing.T) {
	t.Parallel()
	b := NewBaseline("a", "b", "", "a")
	tests := []struct {
		base *Baseline
		fp   string
		want bool
	}{
		{b, "a", true},
		{b, "c", false},
		{b, "", false},
		{nil, "a", false},
	}
	for _, tt := range tests {
		if got := tt.base.Contains(tt.fp); got != tt.want {
			t.Errorf("Contains(%q) = %v, want %v", tt.fp, got, tt.want)
		}
	}
	if got, want := b.Len(), 2; got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
}
