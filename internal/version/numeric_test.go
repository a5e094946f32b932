package version

import (
	"regexp"
	"testing"

	"golang.org/x/mod/semver"
)

func TestNumeric(t *testing.T) {
	// Not parallel: it sets Version.
	old := Version
	t.Cleanup(func() { Version = old })
	// The SARIF Multitool's test of a tool version (SARIF2005).
	numeric := regexp.MustCompile(`^\d+.*`)
	for in, want := range map[string]string{
		"v1.4.0":             "1.4.0",
		"1.4.0-rc.1":         "1.4.0-rc.1",
		"devel":              "0.0.0-devel",
		"1a690e1":            "0.0.0-1a690e1",
		"1a690e1-dirty":      "0.0.0-1a690e1-dirty",
		"v1.4.0-3-g1a690e1":  "1.4.0-3-g1a690e1",
		"007":                "0.0.0-x007",
		"weird/ver sion..01": "0.0.0-weird-ver-sion.x.x01",
	} {
		Version = in
		got := Numeric()
		if got != want {
			t.Errorf("Numeric() with %q = %q, want %q", in, got, want)
		}
		if !numeric.MatchString(got) || !semver.IsValid("v"+got) {
			t.Errorf("Numeric() with %q = %q: not a semantic version", in, got)
		}
	}
}
