package seal_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/vigil-sec/vigil/internal/seal"
)

func TestSealOpen(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{7}, seal.KeySize)
	for _, enc := range []*base64.Encoding{nil, base64.RawStdEncoding} {
		s, err := seal.New(key, enc)
		if err != nil {
			t.Fatal(err)
		}
		sealed := s.Seal([]byte("secret"), []byte("row-1"))
		if got, err := s.Open(sealed, []byte("row-1")); err != nil || string(got) != "secret" {
			t.Fatalf("Open = %q, %v; want the plain value", got, err)
		}
		if s.Seal([]byte("secret"), []byte("row-1")) == sealed {
			t.Error("two seals of one value are equal: the nonce is not random")
		}
		if _, err := s.Open(sealed, []byte("row-2")); !errors.Is(err, seal.ErrOpen) {
			t.Errorf("Open with other associated data: %v, want ErrOpen", err)
		}
		other, _ := seal.New(bytes.Repeat([]byte{8}, seal.KeySize), enc)
		if _, err := other.Open(sealed, []byte("row-1")); !errors.Is(err, seal.ErrOpen) {
			t.Errorf("Open with another key: %v, want ErrOpen", err)
		}
		for _, bad := range []string{"", "!!", "AAAA"} {
			if _, err := s.Open(bad, nil); !errors.Is(err, seal.ErrMalformed) {
				t.Errorf("Open(%q): %v, want ErrMalformed", bad, err)
			}
		}
	}
	if _, err := seal.New(make([]byte, 16), nil); err == nil {
		t.Error("New took a 16-byte key")
	}
	a, _ := seal.Derive([]byte("installation secret"), "purpose a")
	b, _ := seal.Derive([]byte("installation secret"), "purpose b")
	if _, err := b.Open(a.Seal([]byte("x"), nil), nil); !errors.Is(err, seal.ErrOpen) {
		t.Errorf("a value sealed for one purpose opened for another: %v", err)
	}
}
