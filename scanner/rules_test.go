package scanner_test

import (
	"regexp"
	"testing"

	"github.com/vigil-sec/vigil/scanner"
)

// pascal is the SARIF Multitool's test of a friendly rule name (SARIF2012).
var pascal = regexp.MustCompile(`^(\p{Lu}[\p{Ll}\p{Nd}]+)*$`)

func TestPascalName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Look for hardcoded credentials":                        "LookForHardcodedCredentials",
		"Use of hardcoded IV/nonce for encryption":              "UseOfHardcodedIvNonceForEncryption",
		"Detect io.Copy instead of io.CopyN when decompression": "DetectIoCopyInsteadOfIoCopynWhenDecompression",
		"Converting strconv.Atoi result to int32/int16":         "ConvertingStrconvAtoiResultToInt32Int16",
		"Detect http.Dir('/') as a potential risk":              "DetectHttpDirAsPotentialRisk",
		"Rule G101":     "RuleG101",
		"X":             "Xx",
		"2fa check":     "N2faCheck",
		"Ünïcode words": "NcodeWords",
	} {
		got := scanner.PascalName(in)
		if got != want {
			t.Errorf("PascalName(%q) = %q, want %q", in, got, want)
		}
		if !pascal.MatchString(got) {
			t.Errorf("PascalName(%q) = %q, not a Pascal identifier", in, got)
		}
	}
}

func TestRuleUnregistered(t *testing.T) {
	t.Parallel()
	got := scanner.Rule("no-such-engine", "X-1")
	if got.Name != "Rulex1" || got.HelpURI != "" {
		t.Errorf("Rule of an unregistered engine = %+v, want Rulex1 without help", got)
	}
}
