package sast

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/scanner"
)

// recordingCache is the store's cache, recording which keys were put: a
// put is a package that was analysed rather than read from the cache.
type recordingCache struct {
	scanner.Cache
	mu   sync.Mutex
	puts int
}

func (c *recordingCache) Put(ctx context.Context, key string, data []byte) error {
	c.mu.Lock()
	c.puts++
	c.mu.Unlock()
	return c.Cache.Put(ctx, key, data)
}

func (c *recordingCache) takePuts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.puts
	c.puts = 0
	return n
}

// incrementalModule is a module of four packages: main imports b, b
// imports a, c stands alone. b's G115 (an int narrowed to uint8) depends
// on the type a.N returns, so it tells whether b was analysed again after
// a changed.
var incrementalModule = map[string]string{
	"go.mod": "module example.com/inc\n\ngo 1.22\n",
	"main.go": `package main

import (
	"fmt"
	"math/rand"

	"example.com/inc/b"
)

func main() { fmt.Println(b.Narrow(), rand.Intn(3)) }
`,
	"a/a.go": `package a

// N is a number.
func N() int { return 300 }
`,
	"b/b.go": `package b

import "example.com/inc/a"

// Narrow narrows a's number.
func Narrow() uint8 { return uint8(a.N()) }
`,
	"c/c.go": `package c

import (
	"math/rand"
	"os"
)

// Read reads a file named by the caller.
func Read(name string) ([]byte, error) {
	_ = rand.Intn(2)
	return os.ReadFile(name)
}
`,
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestIncrementalEqualsFullScan scans a module, edits one package at a
// time and scans again through the cache: each time only the edited
// package and its importers are analysed, and the findings (fingerprints
// included) and warnings equal those of a full scan of the same files.
func TestIncrementalEqualsFullScan(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	blobs, err := store.NewBlobs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cache := &recordingCache{Cache: store.NewScanCache(db, blobs)}
	dir := t.TempDir()
	writeFiles(t, dir, incrementalModule)
	cfg, target := setup(t, dir)

	check := func(step string, wantAnalysed int) []scanner.Finding {
		t.Helper()
		full := scan(t, cfg, target)
		inc, err := Engine(cfg).Run(scanner.WithCache(t.Context(), cache), target)
		if err != nil {
			t.Fatalf("%s: incremental scan: %v", step, err)
		}
		if got := cache.takePuts(); got != wantAnalysed {
			t.Errorf("%s: %d packages analysed, want %d", step, got, wantAnalysed)
		}
		if diff := cmp.Diff(inc.Findings, full.Findings); diff != "" {
			t.Errorf("%s: incremental findings differ from a full scan's (-incremental +full):\n%s", step, diff)
		}
		if diff := cmp.Diff(inc.Warnings, full.Warnings); diff != "" {
			t.Errorf("%s: incremental warnings differ from a full scan's (-incremental +full):\n%s", step, diff)
		}
		return inc.Findings
	}
	rules := func(fs []scanner.Finding) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.File+":"+f.RuleID)
		}
		slices.Sort(out)
		return out
	}

	first := check("first scan", 4)
	want := []string{"b/b.go:G115", "c/c.go:G304", "c/c.go:G404", "main.go:G404"}
	if diff := cmp.Diff(rules(first), want); diff != "" {
		t.Fatalf("first scan findings (-got +want):\n%s", diff)
	}
	check("nothing changed", 0)

	// b changes alone: a, unchanged, is typed from export data, and b's
	// findings still see that a.N returns an int.
	writeFiles(t, dir, map[string]string{"b/b.go": "package b\n\nimport \"example.com/inc/a\"\n\n// Narrow narrows a's number.\nfunc Narrow() uint8 { return uint8(a.N()) }\n\n// Twice narrows it twice over.\nfunc Twice() uint8 { return uint8(2 * a.N()) }\n"})
	got := check("b changed", 2)
	if n := strings.Count(strings.Join(rules(got), " "), "b/b.go:G115"); n != 2 {
		t.Errorf("after b changed: %d G115 in b, want 2 (%v)", n, rules(got))
	}

	// a now returns a uint8: b's conversion is no longer narrowing. a, b
	// and main are analysed again; c is not.
	writeFiles(t, dir, map[string]string{"a/a.go": "package a\n\n// N is a number.\nfunc N() uint8 { return 200 }\n"})
	got = check("a changed", 3)
	if slices.Contains(rules(got), "b/b.go:G115") {
		t.Error("b's G115 is still reported after a changed its type: b was not analysed again")
	}

	// c changes alone: nothing imports it.
	writeFiles(t, dir, map[string]string{"c/c.go": "package c\n\nimport \"os\"\n\n// Read reads a file named by the caller.\nfunc Read(name string) ([]byte, error) {\n\treturn os.ReadFile(name)\n}\n"})
	got = check("c changed", 1)
	if diff := cmp.Diff(rules(got), []string{"c/c.go:G304", "main.go:G404"}); diff != "" {
		t.Errorf("after c changed (-got +want):\n%s", diff)
	}

	// Back to the first files: every package's result is in the cache.
	writeFiles(t, dir, incrementalModule)
	if got := check("first files again", 0); !cmp.Equal(got, first) {
		t.Error("the first files again gave other findings than the first scan")
	}
}
