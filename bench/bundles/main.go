// Command bundles measures the building of an audit report bundle for
// `make bench`: a release of three repositories and two images, scanned
// through the pipeline as the server's workers scan them (engines.Worker,
// the scan cache, a store and blobs), then its bundle built from the
// stored scans by reports/publish, as ticket approval builds it. It prints
// the time the scans took, the time the bundle took, and their ratio
// (target: under 0.1), then the time to find the stored bundle again.
//
// The repositories are Go modules copied from the module cache (-repo,
// or by default three of Vigil's own dependencies: go-containerregistry,
// go-pdf/fpdf, cobra), each committed into a fresh git repository. The
// images are OCI layouts (-oci) or, by default, two built here (this
// host's Debian package database, a Go binary, random filler), pushed to
// a registry on loopback.
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/licensing"
	"github.com/vigil-sec/vigil/reports"
	"github.com/vigil-sec/vigil/reports/publish"
	"github.com/vigil-sec/vigil/scanner/engines"
)

// defaultModules are the repositories when no -repo is given: modules of
// Vigil's own graph, so they are in the module cache with their
// dependencies.
var defaultModules = []string{"github.com/google/go-containerregistry", "codeberg.org/go-pdf/fpdf", "github.com/spf13/cobra"}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	var repos, ocis multiFlag
	flag.Var(&repos, "repo", "a directory to commit and scan as a repository (repeatable; default: three modules of the module cache)")
	flag.Var(&ocis, "oci", "an OCI image layout to push and scan (repeatable; default: two images built here)")
	work := flag.String("work", "", "a scratch directory (emptied first)")
	dsn := flag.String("db", "", "the store's DSN (default: a SQLite file in -work)")
	fillerMB := flag.Int("filler-mb", 50, "megabytes of random filler in each image built here")
	flag.Parse()
	if *work == "" {
		log.Fatal("bundles: -work is required")
	}
	ctx := context.Background()
	must(os.RemoveAll(*work))
	must(os.MkdirAll(*work, 0o700))
	if len(repos) == 0 {
		for _, m := range defaultModules {
			repos = append(repos, moduleDir(m))
		}
	}

	if *dsn == "" {
		*dsn = "sqlite:" + filepath.Join(*work, "vigil.db")
	}
	db, err := store.Open(ctx, *dsn, store.WithMigrate())
	must(err)
	defer db.Close()
	blobs, err := store.NewBlobs(filepath.Join(*work, "blobs"))
	must(err)
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	regHost := strings.TrimPrefix(reg.URL, "http://")
	sealKey := make([]byte, 32)
	rand.Read(sealKey)
	sealer, err := ci.NewSealer(sealKey)
	must(err)
	pipe, err := ci.New(ci.Config{
		Store: db, Blobs: blobs, Queue: queue{}, Sealer: sealer, Cache: store.NewScanCache(db, blobs),
		Engines: engines.Worker(nil), Registries: ci.Registries{Insecure: []string{regHost}},
	})
	must(err)
	lcfg := licensing.DefaultConfig()
	lcfg.Secret = sealKey
	lic, err := licensing.New(ctx, db, lcfg)
	must(err)
	rels, err := reports.New(reports.Config{Store: db, Pipeline: pipe, Licensing: lic})
	must(err)
	keys, err := reports.NewKeyRing(db, sealKey)
	must(err)
	pub, err := publish.New(publish.Config{Store: db, Blobs: blobs, Releases: rels, Pipeline: pipe, Licensing: lic, Keys: keys,
		TempDir: *work, KeyURL: func(kid string) string {
			return "https://vigil.example.com/.well-known/vigil/report-keys/" + kid + ".pem"
		}})
	must(err)

	// The scans, as the workers run them; their wall times.
	var scanned time.Duration
	var projects, images []string
	fmt.Println("== bundles: scanning", len(repos), "repositories and", max(len(ocis), 2), "images")
	for i, dir := range repos {
		name := fmt.Sprintf("repo%d-%s", i+1, filepath.Base(strings.Split(dir, "@")[0]))
		commit := commitCopy(dir, filepath.Join(*work, "repos", name))
		cp, err := pipe.CreateProject(ctx, ci.ProjectSpec{Name: name, RepoURL: "file://" + filepath.Join(*work, "repos", name), DefaultBranch: "main"})
		must(err)
		d := scan(ctx, pipe, name, ci.NewScan{Kind: ci.KindCommit, ProjectID: cp.Project.ID, CommitSHA: commit})
		scanned += d
		projects = append(projects, name+"@"+commit)
	}
	imgs := loadImages(ocis, *fillerMB)
	for i, img := range imgs {
		ref, err := name.ParseReference(fmt.Sprintf("%s/bench/app%d:1.0", regHost, i+1), name.Insecure)
		must(err)
		must(remote.Write(ref, img, remote.WithContext(ctx)))
		dg, err := img.Digest()
		must(err)
		scanned += scan(ctx, pipe, ref.String(), ci.NewScan{Kind: ci.KindImage, ImageDigest: dg.String(), ImageRef: ref.String()})
		images = append(images, ref.String()+"@"+dg.String())
	}

	// The release and its bundle.
	_, err = lic.CreateProduct(ctx, "bench.app", "Bench App")
	must(err)
	tn, err := lic.CreateTenant(ctx, "Bench Customer")
	must(err)
	rel, err := rels.CreateRelease(ctx, reports.NewRelease{ProductID: "bench.app", Version: "1.0.0", Projects: projects, Images: images})
	must(err)
	_, err = keys.SigningKey(ctx) // made once per installation, not per bundle
	must(err)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	b, err := pub.Build(ctx, rel.ID, publish.Recipient{TenantID: tn.ID})
	must(err)
	built := time.Since(start)
	runtime.ReadMemStats(&after)
	start = time.Now()
	again, err := pub.Build(ctx, rel.ID, publish.Recipient{TenantID: tn.ID})
	must(err)
	reused := time.Since(start)
	if again.ID != b.ID {
		log.Fatalf("bundles: the second build made %s, not the stored %s", again.ID, b.ID)
	}
	fmt.Printf("  bundle %s: %d files, %.1f MB, signed by %s\n", b.ID, len(b.Files), float64(b.Size)/1e6, b.KeyID)
	for _, f := range b.Files {
		fmt.Printf("    %-28s %10d bytes\n", f.Name, f.Size)
	}

	fmt.Println()
	fmt.Println("== bundles summary (one run)")
	fmt.Printf("%-52s %9s %7s  %s\n", "what", "seconds", "ratio", "target")
	fmt.Printf("%-52s %9.2f %7s\n", fmt.Sprintf("scans of %d repositories and %d images", len(repos), len(imgs)), scanned.Seconds(), "1.00")
	fmt.Printf("%-52s %9.2f %7.3f  < 0.1\n", "bundle built from the stored scans", built.Seconds(), built.Seconds()/scanned.Seconds())
	fmt.Printf("%-52s %9.3f %7.4f\n", "the same bundle asked for again (stored)", reused.Seconds(), reused.Seconds()/scanned.Seconds())
	fmt.Printf("%-52s %9.0f MiB (the release's results are held in memory; documents and ZIP are streamed through files)\n",
		"allocated while building", float64(after.TotalAlloc-before.TotalAlloc)/(1<<20))
}

// scan enqueues and runs a scan as a worker does, and returns its wall
// time; it must succeed.
func scan(ctx context.Context, pipe *ci.Service, what string, n ci.NewScan) time.Duration {
	sc, _, err := pipe.Enqueue(ctx, n)
	must(err)
	start := time.Now()
	must(pipe.RunScan(ctx, sc.ID))
	d := time.Since(start)
	sc, _, err = pipe.Scan(ctx, sc.ID)
	must(err)
	if sc.Status != ci.ScanSucceeded {
		log.Fatalf("bundles: the scan of %s %s: %s", what, sc.Status, sc.Error)
	}
	res, err := pipe.Result(ctx, sc)
	must(err)
	comps := 0
	if res.SBOM != nil {
		comps = len(res.SBOM.Components)
	}
	fmt.Printf("  %-52s %7.2f s  %d findings, %d components\n", what, d.Seconds(), len(res.Findings), comps)
	return d
}

// queue is the job queue as this bench drives it: scans run in the
// foreground (RunScan), as one worker would run them.
type queue struct{}

func (queue) InsertScan(context.Context, string) (bool, error)           { return true, nil }
func (queue) InsertStatus(context.Context, string, string) (bool, error) { return true, nil }
func (queue) AddPeriodic(string, string) error                           { return nil }
func (queue) RemovePeriodic(string)                                      {}

// moduleDir is the module cache's folder of a module of Vigil's graph.
func moduleDir(mod string) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", mod).Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		out, err = exec.Command("go", "mod", "download", "-json", mod).Output()
		if err != nil {
			log.Fatalf("bundles: module %s: %v", mod, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), `"Dir": "`); ok {
				return strings.TrimSuffix(v, `",`)
			}
		}
		log.Fatalf("bundles: module %s: no folder", mod)
	}
	return strings.TrimSpace(string(out))
}

// commitCopy copies src to dst and commits it on main; it returns the
// commit.
func commitCopy(src, dst string) string {
	must(os.CopyFS(dst, os.DirFS(src))) // writable copies of the module cache's read-only files
	git(dst, "init", "--quiet", "--initial-branch=main")
	git(dst, "add", "--all")
	git(dst, "commit", "--quiet", "-m", "bench")
	return git(dst, "rev-parse", "HEAD")
}

func git(dir string, args ...string) string {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=bench", "GIT_AUTHOR_EMAIL=bench@example.com",
		"GIT_COMMITTER_NAME=bench", "GIT_COMMITTER_EMAIL=bench@example.com", "GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		log.Fatalf("bundles: git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// loadImages reads the OCI layouts, or builds two images: this host's
// Debian package database, a Go binary (this one, whose build info lists
// Vigil's modules) in the first, and random filler.
func loadImages(ocis []string, fillerMB int) []v1.Image {
	var out []v1.Image
	for _, dir := range ocis {
		p, err := layout.FromPath(dir)
		must(err)
		idx, err := p.ImageIndex()
		must(err)
		m, err := idx.IndexManifest()
		must(err)
		if len(m.Manifests) == 0 {
			log.Fatalf("bundles: %s holds no image", dir)
		}
		img, err := idx.Image(m.Manifests[0].Digest)
		must(err)
		out = append(out, img)
	}
	if len(out) > 0 {
		return out
	}
	status, err := os.ReadFile("/var/lib/dpkg/status")
	if err != nil {
		status = []byte{}
	}
	self, err := os.Executable()
	must(err)
	bin, err := os.ReadFile(self)
	must(err)
	for i := range 2 {
		files := map[string][]byte{"var/lib/dpkg/status": status}
		if i == 0 {
			files["usr/local/bin/app"] = bin
		}
		filler := make([]byte, fillerMB<<20)
		rand.Read(filler)
		files["opt/filler.bin"] = filler
		l, err := layer(files)
		must(err)
		img, err := mutate.AppendLayers(empty.Image, l)
		must(err)
		cfg, err := img.ConfigFile()
		must(err)
		cfg = cfg.DeepCopy()
		cfg.Architecture, cfg.OS = "amd64", "linux"
		img, err = mutate.ConfigFile(img, cfg)
		must(err)
		out = append(out, img)
	}
	return out
}

// layer makes an uncompressed tar of files and wraps it as a layer.
func layer(files map[string][]byte) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for name, data := range files {
		for d := path.Dir(name); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
				return nil, err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
