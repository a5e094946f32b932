// Command rescan measures the scan cache for `make bench`: the first scan
// of a commit against a rescan of the same commit and a scan of a commit
// that changes one package, and the first scan of an image against a
// rescan of its digest and a scan of an image sharing its lower layers.
// The scans run as the server's workers run them: a checkout into a fresh
// workspace, the engines, and a cache in a SQLite store with blobs.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/scanner"
	"github.com/vigil-sec/vigil/scanner/engines"
	"github.com/vigil-sec/vigil/scanner/image"
	"github.com/vigil-sec/vigil/scanner/source"
)

func main() {
	src := flag.String("src", "", "a Go module to commit and scan (the bench corpus)")
	change := flag.String("change", "pkg/v1/layout", "the package, relative to -src, that the second commit changes")
	oci := flag.String("oci", "", "an OCI image layout to scan (the bench image)")
	work := flag.String("work", "", "a scratch directory (emptied first)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the image scans to this file")
	flag.Parse()
	if *work == "" {
		log.Fatal("rescan: -work is required")
	}
	ctx := context.Background()
	must(os.RemoveAll(*work))
	must(os.MkdirAll(*work, 0o700))
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(*work, "vigil.db"), store.WithMigrate())
	must(err)
	defer db.Close()
	blobs, err := store.NewBlobs(filepath.Join(*work, "blobs"))
	must(err)
	cache := store.NewScanCache(db, blobs)
	reg := engines.Worker(nil)

	var tFirst, tRescan, tChange float64
	if *src != "" {
		tFirst, tRescan, tChange = commits(ctx, *src, *change, *work, cache, reg)
	}

	var iFirst, iRescan, iShared, iWhole float64
	if *oci != "" {
		if *cpuprofile != "" {
			f, err := os.Create(*cpuprofile)
			must(err)
			must(pprof.StartCPUProfile(f))
			defer pprof.StopCPUProfile()
		}
		iWhole, iFirst, iRescan, iShared = images(ctx, *oci, cache, reg)
	}

	fmt.Println()
	fmt.Println("== rescan summary (one run each)")
	fmt.Printf("%-44s %9s %7s  %s\n", "scan", "seconds", "ratio", "target")
	if *src != "" {
		fmt.Printf("%-44s %9.2f %7s\n", "commit, first scan (sast+sbom)", tFirst, "1.00")
		fmt.Printf("%-44s %9.2f %7.3f  < 0.05\n", "commit, rescan of the same commit", tRescan, tRescan/tFirst)
		fmt.Printf("%-44s %9.2f %7.3f  < 0.25\n", "commit, one package changed", tChange, tChange/tFirst)
	}
	if *oci != "" {
		fmt.Printf("%-44s %9.2f %7.3f\n", "image, whole-image scan without cache", iWhole, iWhole/iFirst)
		fmt.Printf("%-44s %9.2f %7s\n", "image, first scan (layer by layer)", iFirst, "1.00")
		fmt.Printf("%-44s %9.2f %7.3f  < 0.05\n", "image, rescan of the same digest", iRescan, iRescan/iFirst)
		fmt.Printf("%-44s %9.2f %7.3f\n", "image, new image sharing its layers", iShared, iShared/iFirst)
	}
}

// commits scans a commit of src, the same commit again, and a commit that
// changes the package change, and returns their wall times.
func commits(ctx context.Context, src, change, work string, cache scanner.Cache, reg []scanner.Engine) (tFirst, tRescan, tChange float64) {
	fmt.Println("== rescan: commits of", src)
	repo := filepath.Join(work, "repo")
	must(os.CopyFS(repo, os.DirFS(src)))
	git(repo, "init", "--quiet", "--initial-branch=main")
	git(repo, "add", "--all")
	git(repo, "commit", "--quiet", "-m", "corpus")
	first := git(repo, "rev-parse", "HEAD")
	// As the server's worker does: a rescan first asks the cache without a
	// checkout; a scan records which engines ran for the tree.
	scanCommit := func(name, commit string, rescan bool) float64 {
		start := time.Now()
		if rescan {
			if res, ok := ci.CachedCommitScan(ctx, cache, reg, repo, commit); ok {
				return report(name, time.Since(start), res)
			}
		}
		ws, err := source.Checkout(ctx, repo, commit)
		must(err)
		defer ws.Close()
		engs, err := scanner.Select(reg, []string{"sast", "sbom"}, ws.Target)
		must(err)
		res, err := scanner.Scan(ctx, ws.Target, engs, scanner.Options{Cache: cache})
		must(err)
		ci.RememberSelection(ctx, cache, ws.Target, reg, engs)
		return report(name, time.Since(start), res)
	}
	tFirst = scanCommit("first scan", first, false)
	tRescan = scanCommit("rescan, same commit", first, true)
	files, err := filepath.Glob(filepath.Join(repo, filepath.FromSlash(change), "*.go"))
	must(err)
	var file string
	for _, f := range files {
		if !strings.HasSuffix(f, "_test.go") {
			file = f
			break
		}
	}
	if file == "" {
		log.Fatalf("rescan: no Go file in %s", change)
	}
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	must(err)
	_, err = f.WriteString("\n// vigilBenchChange is the bench's one-package change.\nfunc vigilBenchChange() int { return 42 }\n")
	must(err)
	must(f.Close())
	git(repo, "commit", "--quiet", "-am", "change "+change)
	tChange = scanCommit("one package changed ("+change+")", git(repo, "rev-parse", "HEAD"), false)
	return tFirst, tRescan, tChange
}

// images scans the image in the OCI layout oci whole without a cache, then
// layer by layer through the cache, again, and a new image made of its
// layers and one more, and returns their wall times.
func images(ctx context.Context, oci string, cache scanner.Cache, reg []scanner.Engine) (iWhole, iFirst, iRescan, iShared float64) {
	{
		fmt.Println("== rescan: image", oci)
		scanImage := func(name string, t *scanner.Target, c scanner.Cache) float64 {
			start := time.Now()
			engs, err := scanner.Select(reg, []string{"sbom"}, t)
			must(err)
			res, err := scanner.Scan(ctx, t, engs, scanner.Options{Cache: c})
			must(err)
			return report(name, time.Since(start), res)
		}
		resolve := func() *scanner.Target {
			t, err := image.Resolve(ctx, "oci:"+oci, image.Options{})
			must(err)
			return t
		}
		iWhole = scanImage("whole image, no cache", resolve(), nil)
		iFirst = scanImage("first scan (layer by layer)", resolve(), cache)
		iRescan = scanImage("rescan, same digest", resolve(), cache)
		// A new image on the same layers: one more small layer on top.
		t := resolve()
		top, err := random.Layer(1<<20, types.DockerLayer)
		must(err)
		img, err := mutate.AppendLayers(t.Image, top)
		must(err)
		d, err := img.Digest()
		must(err)
		shared := &scanner.Target{Kind: scanner.KindImage, Ref: "oci:" + oci + "+layer", Image: img, Digest: d.String(), Platform: t.Platform}
		iShared = scanImage("new image sharing its layers", shared, cache)
	}
	return iWhole, iFirst, iRescan, iShared
}

// report prints one scan's wall time and its engines' parts, and returns
// the wall time in seconds.
func report(name string, d time.Duration, res *scanner.Result) float64 {
	var parts []string
	for _, e := range res.Engines {
		s := fmt.Sprintf("%s %.2fs", e.ID, e.Seconds)
		if e.Cached {
			s += " (cached)"
		}
		parts = append(parts, s)
	}
	fmt.Printf("  %-42s %7.2f s  %s; %d findings\n", name, d.Seconds(), strings.Join(parts, ", "), len(res.Findings))
	return d.Seconds()
}

func git(dir string, args ...string) string {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=bench", "GIT_AUTHOR_EMAIL=bench@example.com",
		"GIT_COMMITTER_NAME=bench", "GIT_COMMITTER_EMAIL=bench@example.com", "GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		log.Fatalf("rescan: git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
