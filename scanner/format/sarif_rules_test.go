package format_test

import (
	"bytes"
	"encoding/json"
	"regexp"
	"testing"

	"github.com/vigil-sec/vigil/scanner"
	"github.com/vigil-sec/vigil/scanner/format"
	_ "github.com/vigil-sec/vigil/scanner/sast" // registers gosec's rule names
)

// What the SARIF Multitool's rules for GitHub ask of a tool and its rules
// (SARIF2005: a version that starts with a number; SARIF2012: a friendly
// rule name that is one Pascal identifier, and a help URI), in every
// build, a development one included.
func TestSARIFToolVersionAndRuleNames(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := format.Write(&buf, format.SARIF, result(), nil); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Runs []struct {
			Tool struct {
				Driver struct {
					Version         string `json:"version"`
					SemanticVersion string `json:"semanticVersion"`
					Rules           []struct {
						ID      string `json:"id"`
						Name    string `json:"name"`
						HelpURI string `json:"helpUri"`
					} `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	d := doc.Runs[0].Tool.Driver
	if !regexp.MustCompile(`^\d+.*`).MatchString(d.Version) || d.SemanticVersion != d.Version {
		t.Errorf("driver version %q, semanticVersion %q: want a number first, both the same", d.Version, d.SemanticVersion)
	}
	pascal := regexp.MustCompile(`^(\p{Lu}[\p{Ll}\p{Nd}]+)*$`)
	want := map[string]string{"G404": "InsecureRandomNumberSourceRand", "G401": "TheUsageOfMd5OrSha1"}
	if len(d.Rules) != len(want) {
		t.Fatalf("rules %+v, want %d", d.Rules, len(want))
	}
	for _, r := range d.Rules {
		if r.Name == r.ID || !pascal.MatchString(r.Name) || r.HelpURI == "" {
			t.Errorf("rule %+v: want a Pascal name other than the ID, and a help URI", r)
		}
		if r.Name != want[r.ID] || r.Name != scanner.Rule("sast", r.ID).Name {
			t.Errorf("rule %s named %q, want %q (from gosec's description)", r.ID, r.Name, want[r.ID])
		}
	}
}
