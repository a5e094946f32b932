package licensing

import (
	"strconv"
	"testing"
)

func TestTokenCacheIsBounded(t *testing.T) {
	var c tokenCache
	for i := range 3*tokenCacheSize + 7 {
		c.put("token-"+strconv.Itoa(i), &tokenClaims{TenantID: strconv.Itoa(i)})
	}
	if n := len(c.cur) + len(c.prev); n > 2*tokenCacheSize {
		t.Errorf("the cache holds %d tokens, more than 2×%d", n, tokenCacheSize)
	}
	last := strconv.Itoa(3*tokenCacheSize + 6)
	if got := c.get("token-" + last); got == nil || got.TenantID != last {
		t.Errorf("the last token put is not found: %+v", got)
	}
	if got := c.get("token-0"); got != nil {
		t.Errorf("the oldest token is still cached")
	}
	if got := c.get("never-put"); got != nil {
		t.Errorf("a token never put is found")
	}
}
