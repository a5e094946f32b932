package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-sec/vigil/internal/store"
)

func TestBlobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	b, err := store.NewBlobs(dir)
	if err != nil {
		t.Fatal(err)
	}

	content := bytes.Repeat([]byte("sarif "), 100_000)
	sum := sha256.Sum256(content)
	wantKey := "sha256:" + hex.EncodeToString(sum[:])

	// Concurrent puts of equal content store it once under one key.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			key, size, err := b.Put(ctx, bytes.NewReader(content))
			if err != nil {
				t.Error(err)
				return
			}
			if key != wantKey || size != int64(len(content)) {
				t.Errorf("Put() = %s, %d; want %s, %d", key, size, wantKey, len(content))
			}
		})
	}
	wg.Wait()

	rc, err := b.Open(ctx, wantKey)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, content) {
		t.Errorf("Open() read %d bytes, not the content put", len(got))
	}
	if size, err := b.Size(ctx, wantKey); err != nil || size != int64(len(content)) {
		t.Errorf("Size() = %d, %v", size, err)
	}
	tmp, err := os.ReadDir(filepath.Join(dir, "tmp"))
	if err != nil || len(tmp) != 0 {
		t.Errorf("tmp/ holds %d files after puts (%v), want none", len(tmp), err)
	}

	other, _, err := b.Put(ctx, strings.NewReader("other"))
	if err != nil || other == wantKey {
		t.Errorf("Put(other content) = %s, %v; want another key", other, err)
	}
	if _, err := b.Open(ctx, "sha256:"+strings.Repeat("0", 64)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Open(missing) error = %v, want ErrNotFound", err)
	}
}

func TestBlobsKeyValidation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b, err := store.NewBlobs(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// A file outside the store that a bad key might reach.
	if err := os.WriteFile(filepath.Join(dir, "secret"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{
		"sha256:../../etc/passwd",
		"sha256:../../secret",
		"sha256:" + strings.Repeat("A", 64), // upper case
		"sha256:" + strings.Repeat("0", 63),
		"sha256:" + strings.Repeat("0", 64) + "/..",
		"sha512:" + strings.Repeat("0", 128),
		"/etc/passwd",
		"",
	} {
		if rc, err := b.Open(ctx, key); !errors.Is(err, store.ErrInvalid) {
			if rc != nil {
				rc.Close()
			}
			t.Errorf("Open(%q) error = %v, want ErrInvalid", key, err)
		}
		if _, err := b.Size(ctx, key); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("Size(%q) error = %v, want ErrInvalid", key, err)
		}
	}
}

func TestBlobsPutCancelled(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b, err := store.NewBlobs(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := b.Put(ctx, strings.NewReader("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Put(cancelled) error = %v, want context.Canceled", err)
	}
	tmp, _ := os.ReadDir(filepath.Join(dir, "tmp"))
	if len(tmp) != 0 {
		t.Errorf("a cancelled Put left %d files in tmp/", len(tmp))
	}
}

func TestBlobsOpenCancelled(t *testing.T) {
	t.Parallel()
	b, err := store.NewBlobs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := b.Put(context.Background(), strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if rc, err := b.Open(ctx, key); !errors.Is(err, context.Canceled) {
		if rc != nil {
			rc.Close()
		}
		t.Errorf("Open(cancelled) error = %v, want context.Canceled", err)
	}
	if _, err := b.Size(ctx, key); !errors.Is(err, context.Canceled) {
		t.Errorf("Size(cancelled) error = %v, want context.Canceled", err)
	}
}
