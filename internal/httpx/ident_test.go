package httpx

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckIdentifier(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"", "api", "Ünïcode name", "feature/x-1.2", "https://git.example.com/a/b.git", "\uFFFD", "emoji 🚀"} {
		if err := CheckIdentifier("name", ok, 100); err != nil {
			t.Errorf("CheckIdentifier(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{
		"a\x00b", "a\nb", "a\rb", "a\tb", "a\x1bb", "a\x7fb", "a\u0085b", // C0, DEL, C1 (NEL)
		"a\u2028b", "a\u2029b", // line and paragraph separators
		"a\u202eb", "a\u2066b", "a\u200bb", "a\u200fb", "\ufeffa", // bidi override and isolate, zero width, RLM, BOM
		"a\xffb", "a\xc3", // not UTF-8
		strings.Repeat("a", 101),
	} {
		err := CheckIdentifier("repo_url", bad, 100)
		var e *Error
		if !errors.As(err, &e) || e.Status != 400 || e.Code != CodeInvalidField || !strings.HasPrefix(e.Message, "repo_url: ") {
			t.Errorf("CheckIdentifier(%q) = %v, want a 400 INVALID_FIELD naming repo_url", bad, err)
		}
	}
}
