package sast_test

import (
	"maps"
	"regexp"
	"slices"
	"testing"

	"github.com/securego/gosec/v2/analyzers"
	"github.com/securego/gosec/v2/rules"

	"github.com/vigil-sec/vigil/scanner"
	"github.com/vigil-sec/vigil/scanner/sast"
)

// Every rule and analyzer gosec runs has a friendly name that SARIF
// consumers accept (SARIF2012: one Pascal identifier) and that is neither
// its ID nor another rule's name, and a help page.
func TestRuleNames(t *testing.T) {
	t.Parallel()
	pascal := regexp.MustCompile(`^(\p{Lu}[\p{Ll}\p{Nd}]+)*$`)
	ids := slices.Collect(maps.Keys(rules.Generate(false).Rules))
	ids = append(ids, slices.Collect(maps.Keys(analyzers.Generate(false).Analyzers))...)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) < 50 {
		t.Fatalf("gosec lists %d rules, want its full set", len(ids))
	}
	seen := map[string]string{}
	for _, id := range ids {
		info := scanner.Rule(sast.ID, id)
		switch {
		case !pascal.MatchString(info.Name) || info.Name == "":
			t.Errorf("%s: name %q is not a Pascal identifier", id, info.Name)
		case info.Name == id:
			t.Errorf("%s: name equals the ID", id)
		case info.HelpURI != sast.RulesHelpURI:
			t.Errorf("%s: help URI %q", id, info.HelpURI)
		}
		if other, dup := seen[info.Name]; dup {
			t.Errorf("%s and %s share the name %q", id, other, info.Name)
		}
		seen[info.Name] = id
	}
	if got := scanner.Rule(sast.ID, "G101").Name; got != "HardcodedCredentials" {
		t.Errorf("G101's name = %q, want HardcodedCredentials", got)
	}
}
