package scanner

import (
	"sync"
	"unicode"
)

// RuleInfo is what reports say about a rule besides its ID: a friendly
// name (one PascalCase identifier, never the ID itself, as SARIF
// consumers such as GitHub code scanning expect) and a page that
// explains it.
type RuleInfo struct {
	Name    string
	HelpURI string
}

var (
	rulesMu sync.RWMutex
	rules   = map[string]func(ruleID string) (RuleInfo, bool){}
)

// RegisterRules makes lookup answer Rule for the rules of the engine with
// the ID; an engine registers its rules once, in its package's init.
func RegisterRules(engine string, lookup func(ruleID string) (RuleInfo, bool)) {
	rulesMu.Lock()
	defer rulesMu.Unlock()
	rules[engine] = lookup
}

// Rule describes the rule of an engine. A rule its engine did not
// register (an engine not linked in, a rule newer than the engine's
// table) gets the name "Rule" followed by its ID's letters and digits, and
// no help page.
func Rule(engine, ruleID string) RuleInfo {
	rulesMu.RLock()
	lookup := rules[engine]
	rulesMu.RUnlock()
	if lookup != nil {
		if info, ok := lookup(ruleID); ok {
			return info
		}
	}
	return RuleInfo{Name: PascalName("Rule " + ruleID)}
}

// PascalName turns a phrase into one PascalCase identifier made of words
// that each start with an upper-case letter followed by lower-case
// letters or digits: "Use of hardcoded IV/nonce" becomes
// "UseOfHardcodedIvNonce". Characters other than letters and digits split
// words and other letters are left out; the article "a" is dropped, and
// another word of one character joins the word before it.
func PascalName(phrase string) string {
	var words [][]rune
	var cur []rune
	flush := func() {
		if len(cur) == 0 {
			return
		}
		if len(cur) == 1 && (cur[0] == 'a' || cur[0] == 'A') {
			cur = nil // the article says nothing in a name
			return
		}
		if len(cur) == 1 && len(words) > 0 {
			words[len(words)-1] = append(words[len(words)-1], unicode.ToLower(cur[0]))
		} else {
			words = append(words, cur)
		}
		cur = nil
	}
	for _, r := range phrase {
		switch {
		case r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			cur = append(cur, r)
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			// Not ASCII: left out, the word goes on.
		default:
			flush()
		}
	}
	flush()
	var out []rune
	for _, w := range words {
		if unicode.IsDigit(w[0]) {
			// A word cannot start with a digit: it joins the one before,
			// or gets a prefix.
			if len(out) == 0 {
				out = append(out, 'N')
			}
			for _, r := range w {
				out = append(out, unicode.ToLower(r))
			}
			continue
		}
		out = append(out, unicode.ToUpper(w[0]))
		for _, r := range w[1:] {
			out = append(out, unicode.ToLower(r))
		}
		if len(w) == 1 {
			out = append(out, 'x') // a lone one-letter word: never a bare capital
		}
	}
	return string(out)
}
