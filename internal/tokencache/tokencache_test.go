package tokencache

import (
	"strconv"
	"testing"
)

func TestBounded(t *testing.T) {
	var c Cache[string]
	for i := range 3*Size + 7 {
		c.Put("token-"+strconv.Itoa(i), strconv.Itoa(i))
	}
	if n := c.Len(); n > 2*Size {
		t.Errorf("the cache holds %d tokens, more than 2×%d", n, Size)
	}
	last := strconv.Itoa(3*Size + 6)
	if got, ok := c.Get("token-" + last); !ok || got != last {
		t.Errorf("the last token put is not found: %q %v", got, ok)
	}
	if _, ok := c.Get("token-0"); ok {
		t.Errorf("the oldest token is still cached")
	}
	if _, ok := c.Get("never-put"); ok {
		t.Errorf("a token never put is found")
	}
	c.Clear()
	if _, ok := c.Get("token-" + last); ok || c.Len() != 0 {
		t.Errorf("Clear left tokens")
	}
}
