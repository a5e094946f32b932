package sast

import (
	"strings"
	"sync"

	"github.com/securego/gosec/v2/analyzers"
	"github.com/securego/gosec/v2/rules"

	"github.com/vigil-sec/vigil/scanner"
)

// RulesHelpURI is the page that documents gosec's rules.
const RulesHelpURI = "https://github.com/securego/gosec#available-rules"

// ruleNames are the friendly names of gosec's rules and analyzers, made
// from the descriptions gosec gives them ("Look for hardcoded
// credentials" → "HardcodedCredentials"), so that they follow gosec.
var ruleNames = sync.OnceValue(func() map[string]string {
	names := map[string]string{}
	for id, def := range analyzers.Generate(false).Analyzers {
		names[id] = ruleName(def.Description)
	}
	for id, def := range rules.Generate(false).Rules {
		names[id] = ruleName(def.Description) // a rule's description wins over an analyzer's of the same ID
	}
	return names
})

// ruleName is a description as a friendly name, without the verbs that
// gosec starts some descriptions with ("Look for", "Detect", "Audit").
func ruleName(description string) string {
	d := description
	for _, verb := range []string{"Look for ", "Detect ", "Audit "} {
		if rest, ok := strings.CutPrefix(d, verb); ok && rest != "" {
			d = rest
			break
		}
	}
	return scanner.PascalName(d)
}

func init() {
	scanner.RegisterRules(ID, func(ruleID string) (scanner.RuleInfo, bool) {
		name, ok := ruleNames()[ruleID]
		if !ok {
			return scanner.RuleInfo{}, false
		}
		return scanner.RuleInfo{Name: name, HelpURI: RulesHelpURI}, true
	})
}
