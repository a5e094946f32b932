package licensing_test

import (
	"testing"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/licensing"
)

// The service hands its Page to the store as is: the limits it documents
// must be the ones the store enforces.
func TestPageLimitsAreTheStores(t *testing.T) {
	t.Parallel()
	if licensing.DefaultPageLimit != store.DefaultPageLimit || licensing.MaxPageLimit != store.MaxPageLimit {
		t.Errorf("licensing page limits %d/%d, store's %d/%d", licensing.DefaultPageLimit, licensing.MaxPageLimit, store.DefaultPageLimit, store.MaxPageLimit)
	}
}
