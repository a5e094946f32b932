package server_test

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/gittest"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/scanner"
	"github.com/vigil-sec/vigil/scanner/engines"
	"github.com/vigil-sec/vigil/scanner/format"
	"github.com/vigil-sec/vigil/scanner/image"
	"github.com/vigil-sec/vigil/scanner/image/imagetest"
	"github.com/vigil-sec/vigil/scanner/source"
)

// cachedEngines reports which engines of a result came from the cache.
func cachedEngines(res *scanner.Result) map[string]bool {
	m := map[string]bool{}
	for _, e := range res.Engines {
		m[e.ID] = e.Cached
	}
	return m
}

// TestScanCacheReusesOutputs scans a commit, then the same commit again
// through another worker's cache over the same store, then a commit with
// the same tree, then with an engine of another version: the second and
// third scans are served from the cache, with the same findings,
// fingerprints and SBOM documents; the last misses.
func TestScanCacheReusesOutputs(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		blobs, err := store.NewBlobs(filepath.Join(t.TempDir(), "blobs"))
		if err != nil {
			t.Fatal(err)
		}
		r := gittest.New(t)
		weak := r.Commit("weak random", map[string]string{
			"go.mod":  goMod,
			"main.go": "package main\n\nimport \"math/rand\"\n\nfunc main() { println(rand.Intn(3)) }\n",
		})
		same := r.Commit("empty: the same tree", nil)
		reg := engines.Registry(nil)

		scan := func(commit string, c scanner.Cache, reg []scanner.Engine) *scanner.Result {
			t.Helper()
			ws, err := source.Checkout(ctx, r.Dir, commit)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			engs, err := scanner.Select(reg, nil, ws.Target)
			if err != nil {
				t.Fatal(err)
			}
			res, err := scanner.Scan(ctx, ws.Target, engs, scanner.Options{Cache: c})
			if err != nil {
				t.Fatal(err)
			}
			return res
		}

		worker1, worker2 := store.NewScanCache(db, blobs), store.NewScanCache(db, blobs)
		first := scan(weak, worker1, reg)
		if got, want := cachedEngines(first), map[string]bool{"sast": false, "sbom": false}; !cmp.Equal(got, want) {
			t.Fatalf("first scan: cached = %v, want %v", got, want)
		}
		if len(first.Findings) == 0 {
			t.Fatal("first scan found nothing; the fixture has a G404")
		}
		if n, err := worker1.CacheEntries(ctx); err != nil || n < 2 {
			t.Fatalf("cache holds %d entries (%v) after the first scan; want both engines' outputs", n, err)
		}

		for name, commit := range map[string]string{"same commit": weak, "same tree": same} {
			again := scan(commit, worker2, reg)
			if got, want := cachedEngines(again), map[string]bool{"sast": true, "sbom": true}; !cmp.Equal(got, want) {
				t.Errorf("%s: cached = %v, want %v", name, got, want)
			}
			if diff := cmp.Diff(again.Findings, first.Findings); diff != "" {
				t.Errorf("%s: cached findings differ (-cached +fresh):\n%s", name, diff)
			}
			if diff := cmp.Diff(again.SBOM.Components, first.SBOM.Components); diff != "" {
				t.Errorf("%s: cached components differ (-cached +fresh):\n%s", name, diff)
			}
			// The standard formats are written from the cached syft
			// document as from the fresh one.
			for _, f := range []format.Format{format.SARIF, format.CycloneDXJSON, format.SPDXJSON} {
				if got, want := write(t, f, again), write(t, f, first); got != want {
					t.Errorf("%s: %s from the cache differs from the fresh one", name, f)
				}
			}
		}

		// A new engine version is new rules: nothing of the old one is reused.
		newer := make([]scanner.Engine, len(reg))
		copy(newer, reg)
		for i := range newer {
			newer[i].Version += "-next"
		}
		if got, want := cachedEngines(scan(weak, worker2, newer)), map[string]bool{"sast": false, "sbom": false}; !cmp.Equal(got, want) {
			t.Errorf("new engine versions: cached = %v, want %v", got, want)
		}
		// Another configuration too.
		changed := make([]scanner.Engine, len(reg))
		copy(changed, reg)
		for i := range changed {
			changed[i].Config += " changed"
		}
		if got, want := cachedEngines(scan(weak, worker2, changed)), map[string]bool{"sast": false, "sbom": false}; !cmp.Equal(got, want) {
			t.Errorf("new engine configuration: cached = %v, want %v", got, want)
		}
	})
}

// TestScanCacheImage rescans an image digest from the cache, and never
// serves a directory from it.
func TestScanCacheImage(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, store.SQLite)
	blobs, err := store.NewBlobs(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	c := store.NewScanCache(db, blobs)
	fx := imagetest.New(t)
	reg := engines.Registry(nil)
	scan := func(tg *scanner.Target) *scanner.Result {
		t.Helper()
		engs, err := scanner.Select(reg, []string{"sbom"}, tg)
		if err != nil {
			t.Fatal(err)
		}
		res, err := scanner.Scan(ctx, tg, engs, scanner.Options{Cache: c})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	resolve := func() *scanner.Target {
		tg, err := image.Resolve(ctx, fx.Registry+"/vigil/fixture@"+fx.Digest, image.Options{Insecure: true})
		if err != nil {
			t.Fatal(err)
		}
		return tg
	}
	first, again := scan(resolve()), scan(resolve())
	if first.Engines[0].Cached || !again.Engines[0].Cached {
		t.Errorf("image scans: cached = %v then %v, want false then true", first.Engines[0].Cached, again.Engines[0].Cached)
	}
	if diff := cmp.Diff(again.SBOM.Components, first.SBOM.Components); diff != "" {
		t.Errorf("cached components differ (-cached +fresh):\n%s", diff)
	}
	if got, want := write(t, format.CycloneDXJSON, again), write(t, format.CycloneDXJSON, first); got != want {
		t.Error("CycloneDX from the cache differs from the fresh one")
	}

	dir := &scanner.Target{Kind: scanner.KindDir, Ref: t.TempDir(), Path: t.TempDir()}
	for range 2 {
		if res := scan(dir); res.Engines[0].Cached {
			t.Error("a directory was served from the cache; its files may have changed")
		}
	}
}

// write renders res in f with the volatile fields (times, serial numbers)
// of a fresh scan removed by rendering both sides the same way.
func write(t *testing.T, f format.Format, res *scanner.Result) string {
	t.Helper()
	r := *res
	r.StartedAt, r.FinishedAt = r.StartedAt.Truncate(0), r.StartedAt.Truncate(0)
	r.Engines = nil
	var buf bytes.Buffer
	if err := format.Write(&buf, f, &r, nil); err != nil {
		t.Fatal(err)
	}
	return redact(buf.String())
}

var (
	uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	timeRE = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
)

// redact replaces what every encoding makes anew: document serial
// numbers and namespaces, and creation times.
func redact(s string) string {
	return timeRE.ReplaceAllString(uuidRE.ReplaceAllString(s, "UUID"), "TIME")
}

// TestCachedCommitScan answers a rescan of a commit from the cache without
// a checkout, and declines when anything is missing from it.
func TestCachedCommitScan(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, store.SQLite)
	blobs, err := store.NewBlobs(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	c := store.NewScanCache(db, blobs)
	r := gittest.New(t)
	weak := r.Commit("weak random", map[string]string{
		"go.mod":  goMod,
		"main.go": "package main\n\nimport \"math/rand\"\n\nfunc main() { println(rand.Intn(3)) }\n",
	})
	reg := engines.Registry(nil)

	if _, ok := ci.CachedCommitScan(ctx, c, reg, r.Dir, weak); ok {
		t.Fatal("CachedCommitScan answered before any scan")
	}
	ws, err := source.Checkout(ctx, r.Dir, weak)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	engs, err := scanner.Select(reg, nil, ws.Target)
	if err != nil {
		t.Fatal(err)
	}
	first, err := scanner.Scan(ctx, ws.Target, engs, scanner.Options{Cache: c})
	if err != nil {
		t.Fatal(err)
	}
	ci.RememberSelection(ctx, c, ws.Target, reg, engs)

	got, ok := ci.CachedCommitScan(ctx, c, reg, r.Dir, weak)
	if !ok {
		t.Fatal("CachedCommitScan declined a commit scanned before")
	}
	if want := map[string]bool{"sast": true, "sbom": true}; !cmp.Equal(cachedEngines(got), want) {
		t.Errorf("cached = %v, want %v", cachedEngines(got), want)
	}
	if diff := cmp.Diff(got.Findings, first.Findings); diff != "" {
		t.Errorf("findings differ from the first scan's (-cached +first):\n%s", diff)
	}
	if got.Target != first.Target {
		t.Errorf("target = %+v, want %+v", got.Target, first.Target)
	}

	// Another commit's tree, or an engine of another version: no answer.
	other := r.Commit("another tree", map[string]string{"README": "x\n"})
	if _, ok := ci.CachedCommitScan(ctx, c, reg, r.Dir, other); ok {
		t.Error("CachedCommitScan answered for a tree never scanned")
	}
	newer := make([]scanner.Engine, len(reg))
	copy(newer, reg)
	newer[0].Version += "-next"
	if _, ok := ci.CachedCommitScan(ctx, c, newer, r.Dir, weak); ok {
		t.Error("CachedCommitScan answered for a new engine version")
	}
	if _, ok := ci.CachedCommitScan(ctx, c, reg, r.Dir, "0123456789abcdef0123456789abcdef01234567"); ok {
		t.Error("CachedCommitScan answered for a commit the repository lacks")
	}
}
