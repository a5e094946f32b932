package store

import (
	"math/rand"
	"testing"
)

func TestLookup(t *testing.T) {
	t.Log(rand.Intn(10)) // G404, reported only when tests are scanned
}
