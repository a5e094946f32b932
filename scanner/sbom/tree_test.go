package sbom_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-sec/vigil/internal/gittest"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/scanner"
	"github.com/vigil-sec/vigil/scanner/sbom"
	"github.com/vigil-sec/vigil/scanner/source"
)

// TestTreeReuse scans commits of a repository through the cache: a commit
// that changes no file syft depends on reuses the last catalog, one that
// changes a manifest is cataloged again, and both equal a fresh catalog.
func TestTreeReuse(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	blobs, err := store.NewBlobs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cache := store.NewScanCache(db, blobs)
	r := gittest.New(t)
	first := r.Commit("first", map[string]string{
		"go.mod":           "module example.com/app\n\ngo 1.22\n\nrequire github.com/google/go-cmp v0.7.0\n",
		"go.sum":           "github.com/google/go-cmp v0.7.0 h1:wk8382ETsv4JYUZwIsn6YpYiWiBsYLSJiTsyBybVuN8=\ngithub.com/google/go-cmp v0.7.0/go.mod h1:pXiqmnSA92OHEEa9HXL2W4E7lf9JzCmGVUdgjX3N/iU=\n",
		"main.go":          "package main\n\nimport \"github.com/google/go-cmp/cmp\"\n\nfunc main() { println(cmp.Diff(1, 2)) }\n",
		"requirements.txt": "requests==2.31.0\n",
	})
	code := r.Commit("code only", map[string]string{
		"main.go": "package main\n\nimport \"github.com/google/go-cmp/cmp\"\n\nfunc main() { println(cmp.Diff(1, 3)) }\n",
	})
	manifest := r.Commit("a new requirement", map[string]string{
		"requirements.txt": "requests==2.31.0\nurllib3==2.0.7\n",
	})

	scan := func(commit string, c scanner.Cache) ([]scanner.Component, bool) {
		t.Helper()
		ws, err := source.Checkout(context.Background(), r.Dir, commit)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		var (
			mu     sync.Mutex
			reused bool
		)
		cfg := &sbom.Config{Logger: testLogger(t), Progress: func(m string) {
			mu.Lock()
			defer mu.Unlock()
			reused = reused || strings.Contains(m, "the last commit's catalog")
		}}
		ctx := t.Context()
		if c != nil {
			ctx = scanner.WithCache(ctx, c)
		}
		out, err := sbom.Engine(cfg).Run(ctx, ws.Target)
		if err != nil {
			t.Fatal(err)
		}
		return out.SBOM.Components, reused
	}

	for _, step := range []struct {
		name, commit string
		wantReused   bool
		wantPackage  string
	}{
		{"first commit", first, false, "requests"},
		{"code change", code, true, "github.com/google/go-cmp"},
		{"manifest change", manifest, false, "urllib3"},
		{"code change again after it", code, false, "requests"}, // the last catalog is now the manifest commit's
	} {
		got, reused := scan(step.commit, cache)
		want, _ := scan(step.commit, nil)
		if reused != step.wantReused {
			t.Errorf("%s: reused = %v, want %v", step.name, reused, step.wantReused)
		}
		if diff := cmp.Diff(got, want); diff != "" {
			t.Errorf("%s: components differ from a fresh catalog (-cache +fresh):\n%s", step.name, diff)
		}
		if !containsName(got, step.wantPackage) {
			t.Errorf("%s: no %s among %d components", step.name, step.wantPackage, len(got))
		}
	}
}

func containsName(cs []scanner.Component, name string) bool {
	for _, c := range cs {
		if c.Name == name {
			return true
		}
	}
	return false
}
