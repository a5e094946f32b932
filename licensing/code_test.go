package licensing_test

import (
	"regexp"
	"testing"

	"github.com/vigil-sec/vigil/licensing"
)

func TestActivationCode(t *testing.T) {
	t.Parallel()
	format := regexp.MustCompile(`^[A-Z2-9]{4}(-[A-Z2-9]{4}){3}$`)
	seen := map[string]bool{}
	for range 1000 {
		c := licensing.NewActivationCode()
		if !format.MatchString(c) {
			t.Fatalf("code %q does not match %v", c, format)
		}
		if seen[c] {
			t.Fatalf("code %q made twice", c)
		}
		seen[c] = true
		norm, ok := licensing.NormalizeCode(" " + c[:9] + " " + c[10:] + " ")
		if !ok || len(norm) != 16 {
			t.Fatalf("NormalizeCode(%q) = %q, %v", c, norm, ok)
		}
	}
	for _, bad := range []string{"", "ABCD", "ABCD-EFGH-JKLM-NPQ0", "ABCD-EFGH-JKLM-NPQRS"} {
		if _, ok := licensing.NormalizeCode(bad); ok {
			t.Errorf("NormalizeCode(%q) accepted", bad)
		}
	}
}
