package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/scanner"
)

func TestScanCache(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		blobs, err := store.NewBlobs(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		c := store.NewScanCache(db, blobs)
		var _ scanner.Cache = c

		key := scanner.CacheKey("engine-output", "sast", "v2.30.0", "", "git-tree:abc")
		if _, ok, err := c.Get(ctx, key); ok || err != nil {
			t.Fatalf("Get(empty cache) = ok %v, %v; want a miss", ok, err)
		}

		// Workers racing to store the same value: one row, same value.
		value := bytes.Repeat([]byte("output "), 10_000)
		var wg sync.WaitGroup
		for range 6 {
			wg.Go(func() {
				if err := c.Put(ctx, key, value); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		got, ok, err := c.Get(ctx, key)
		if err != nil || !ok || !bytes.Equal(got, value) {
			t.Fatalf("Get() = %d bytes, ok %v, %v; want the %d bytes put", len(got), ok, err, len(value))
		}
		if n, err := c.CacheEntries(ctx); err != nil || n != 1 {
			t.Errorf("CacheEntries() = %d, %v; want 1", n, err)
		}

		// A second cache over the same database and blobs (another
		// worker) sees the value.
		other := store.NewScanCache(db, blobs)
		if got, ok, err := other.Get(ctx, key); err != nil || !ok || !bytes.Equal(got, value) {
			t.Errorf("another worker's Get() = ok %v, %v; want the value", ok, err)
		}

		// Another key misses.
		if _, ok, err := c.Get(ctx, scanner.CacheKey("engine-output", "sast", "v2.31.0", "", "git-tree:abc")); ok || err != nil {
			t.Errorf("Get(other version) = ok %v, %v; want a miss", ok, err)
		}

		for _, bad := range []string{"", "../../etc/passwd", strings.Repeat("A", 64), "sha256:" + strings.Repeat("0", 64)} {
			if _, _, err := c.Get(ctx, bad); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("Get(%q) error = %v, want ErrInvalid", bad, err)
			}
			if err := c.Put(ctx, bad, []byte("x")); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("Put(%q) error = %v, want ErrInvalid", bad, err)
			}
		}
	})
}

func TestScanCacheManyKeys(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		blobs, err := store.NewBlobs(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		c := store.NewScanCache(db, blobs)
		// Equal values under different keys share one blob.
		for i := range 20 {
			if err := c.Put(ctx, scanner.CacheKey("pkg", fmt.Sprint(i)), []byte(fmt.Sprint(i%2))); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 20 {
			got, ok, err := c.Get(ctx, scanner.CacheKey("pkg", fmt.Sprint(i)))
			if err != nil || !ok || string(got) != fmt.Sprint(i%2) {
				t.Errorf("Get(%d) = %q, %v, %v; want %q", i, got, ok, err, fmt.Sprint(i%2))
			}
		}
		if n, err := c.CacheEntries(ctx); err != nil || n != 20 {
			t.Errorf("CacheEntries() = %d, %v; want 20", n, err)
		}
	})
}
