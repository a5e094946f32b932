package sast

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-sec/vigil/scanner"
)

// files returns the sorted, distinct files of the findings.
func files(fs []scanner.Finding) []string {
	var out []string
	for _, f := range fs {
		if !slices.Contains(out, f.File) {
			out = append(out, f.File)
		}
	}
	slices.Sort(out)
	return out
}

func TestRunNestedModulesAndWorkspaces(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fixture   string
		wantFiles []string
	}{
		// The root module is clean: every finding is in the nested one.
		{"nested", []string{"svc/main.go", "svc/store/store.go"}},
		// No go.mod at the root, two modules used by the go.work.
		{"workspace", []string{"api/main.go", "worker/jobs/jobs.go"}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			t.Parallel()
			cfg, target := setup(t, filepath.Join("testdata", tt.fixture))
			out := scan(t, cfg, target)
			if diff := cmp.Diff(files(out.Findings), tt.wantFiles); diff != "" {
				t.Errorf("files with findings (-got +want):\n%s", diff)
			}
			if len(out.Unanalysed) > 0 || len(out.Warnings) > 0 {
				t.Errorf("unanalysed %+v, warnings %q; want none", out.Unanalysed, out.Warnings)
			}
		})
	}
}

func TestRunUnloadableModule(t *testing.T) {
	t.Parallel()
	cfg, target := setup(t, filepath.Join("testdata", "unloadable"))
	out := scan(t, cfg, target)
	if len(out.Unanalysed) != 1 {
		t.Fatalf("unanalysed = %+v; want the module in bad/", out.Unanalysed)
	}
	u := out.Unanalysed[0]
	if u.Engine != ID || u.Path != "bad" || !strings.Contains(u.Reason, "go.mod") {
		t.Errorf("unanalysed = %+v; want engine sast, path bad and the go command's reason", u)
	}
	abs, _ := filepath.Abs(target.Path)
	if strings.Contains(u.Reason, abs) {
		t.Errorf("reason %q names the absolute path of the target; want paths relative to it", u.Reason)
	}
	// _skipped is skipped as the go command's ./... skips it, and the
	// clean root module is still analysed (and clean).
	if len(out.Findings) > 0 {
		t.Errorf("findings in %q; want none", files(out.Findings))
	}
}

func TestFindModules(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"go.mod":                  "module example.com/root\n",
		"a/go.mod":                "module example.com/a\n",
		"a/b/go.mod":              "module example.com/a/b\n",
		"vendor/x/go.mod":         "module x\n",
		"testdata/y/go.mod":       "module y\n",
		".hidden/go.mod":          "module h\n",
		"_tools/go.mod":           "module t\n",
		"ws/go.work":              "go 1.24\n\nuse (\n\t./m\n\t../_tools\n\t../../outside\n\t./nomod\n)\n",
		"ws/m/go.mod":             "module example.com/ws/m\n",
		"ws/left/go.mod":          "module example.com/ws/left\n",
		"ws/nomod/readme.txt":     "no module here\n",
		"broken/go.work":          "use (\n",
		"broken/inner/go.mod":     "module example.com/broken/inner\n",
		"a/b/testdata/z/go.mod":   "module z\n",
		"a/b/.git/q/go.mod":       "module q\n",
		"a/b/deep/er/est/go.mod":  "module example.com/deep\n",
		"a/vendorish/go.mod":      "module example.com/vendorish\n",
		"notamodule/go.mod.txt":   "module no\n",
		"notamodule/sub/file.go":  "package sub\n",
		"ws/m/vendor/v/go.mod":    "module v\n",
		"ws/m/testdata/t/go.work": "use ./x\n",
	})
	if err := os.Symlink(filepath.Join(root, "a"), filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	lay, err := findModules(root)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range lay.modules {
		got = append(got, m.rel+" gowork="+strings.TrimPrefix(m.gowork, root+string(filepath.Separator)))
	}
	want := []string{
		". gowork=off",
		"_tools gowork=ws/go.work", // used by the go.work, although ./... would skip it
		"a gowork=off",
		"a/b gowork=off",
		"a/b/deep/er/est gowork=off",
		"a/vendorish gowork=off",
		"broken/inner gowork=off", // its go.work does not parse: it is reported, and the module loads without it
		"ws/left gowork=off",      // in the workspace's tree but not used by it
		"ws/m gowork=ws/go.work",
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("modules (-got +want):\n%s", diff)
	}
	var unanalysed []string
	for _, u := range lay.unanalysed {
		unanalysed = append(unanalysed, u.Path)
	}
	if diff := cmp.Diff(unanalysed, []string{"broken/go.work", "ws/nomod"}); diff != "" {
		t.Errorf("unanalysed (-got +want):\n%s", diff)
	}
	if !slices.ContainsFunc(lay.warnings, func(w string) bool { return strings.Contains(w, "outside the target") }) {
		t.Errorf("warnings %q: want one for the go.work's use of a folder outside the target", lay.warnings)
	}
}

// recordingProxy is a module proxy that answers 404 to everything and
// records what was asked.
func recordingProxy(t *testing.T) (url string, requests func() []string) {
	t.Helper()
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.URL.Path)
		mu.Unlock()
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

// TestUntrustedToolchain checks that an untrusted module cannot make the go
// command download and run another toolchain. Not parallel: it sets the
// environment the go command inherits.
func TestUntrustedToolchain(t *testing.T) {
	tests := []struct {
		name          string
		gomod         string
		wantAnalysed  bool
		wantInReasons string
	}{
		// A go line newer than the local toolchain: refused, with the
		// go command's reason naming the version.
		{name: "go line", gomod: "module example.com/x\n\ngo 1.99\n", wantInReasons: "1.99"},
		// A toolchain line: ignored, the local toolchain analyses it.
		{name: "toolchain line", gomod: "module example.com/x\n\ngo 1.24\n\ntoolchain go1.99.0\n", wantAnalysed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proxy, requests := recordingProxy(t)
			// What a developer's machine or a default install has: the
			// go command would fetch go1.99.0 from the proxy and run it.
			t.Setenv("GOTOOLCHAIN", "auto")
			t.Setenv("GOPROXY", proxy)
			t.Setenv("GOSUMDB", "off")
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{
				"go.mod":  tt.gomod,
				"main.go": "package main\n\nimport \"math/rand\"\n\nfunc main() { println(rand.Int()) }\n",
			})
			cfg, target := setup(t, dir)
			cfg.Untrusted = true
			out := scan(t, cfg, target)
			if got := requests(); len(got) > 0 {
				t.Errorf("module proxy requests %q; want none", got)
			}
			if tt.wantAnalysed {
				if len(out.Unanalysed) > 0 || !slices.Contains(ruleIDs(out.Findings, false), "G404") {
					t.Errorf("unanalysed %+v, findings %v; want the module analysed with the local toolchain", out.Unanalysed, ruleIDs(out.Findings, false))
				}
				return
			}
			if len(out.Unanalysed) != 1 || out.Unanalysed[0].Path != "." || !strings.Contains(out.Unanalysed[0].Reason, tt.wantInReasons) {
				t.Errorf("unanalysed = %+v; want the root module, refused for %s", out.Unanalysed, tt.wantInReasons)
			}
			if len(out.Findings) > 0 {
				t.Errorf("findings %v from a module that was refused", ruleIDs(out.Findings, false))
			}
		})
	}
}

// TestUntrustedNoCgo checks that files that import "C" are left out of an
// untrusted scan, so no C compiler runs on the repository's code.
func TestUntrustedNoCgo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"go.mod":  "module example.com/cgo\n\ngo 1.24\n",
		"main.go": "package main\n\nfunc main() { run() }\n",
		// The preamble would stop any C compiler that saw it.
		"cgo.go":   "package main\n\n/*\n#error \"the C compiler ran\"\n*/\nimport \"C\"\n\nimport \"math/rand\"\n\nfunc run() { println(rand.Int()) }\n",
		"nocgo.go": "//go:build !cgo\n\npackage main\n\nimport \"crypto/md5\"\n\nfunc run() { println(md5.Sum(nil)[0]) }\n",
	})
	cfg, target := setup(t, dir)
	cfg.Untrusted = true
	out := scan(t, cfg, target)
	if diff := cmp.Diff(files(out.Findings), []string{"nocgo.go"}); diff != "" {
		t.Errorf("files with findings (-got +want):\n%s", diff)
	}
	if len(out.Unanalysed) > 0 || len(out.Warnings) > 0 {
		t.Errorf("unanalysed %+v, warnings %q; want none", out.Unanalysed, out.Warnings)
	}
}

// cacheBytes is the size of the outputs in a Go build cache.
func cacheBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(d.Name(), "-d") {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestReusesThePipelinesBuildCache checks that a scan right after the
// pipeline's `go build ./...` compiles nothing again: it types imports
// from the export data that build left in the cache. Not parallel: it sets
// GOCACHE for the go command.
func TestReusesThePipelinesBuildCache(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles part of the standard library into a fresh build cache")
	}
	cache := t.TempDir()
	t.Setenv("GOCACHE", cache)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"go.mod":  "module example.com/small\n\ngo 1.24\n",
		"main.go": "package main\n\nimport (\n\t\"math/rand\"\n\t\"strconv\"\n)\n\nfunc main() { println(strconv.Itoa(rand.Int())) }\n",
	})
	build := exec.CommandContext(t.Context(), "go", "build", "./...")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	before := cacheBytes(t, cache)
	cfg, target := setup(t, dir)
	out := scan(t, cfg, target)
	if !slices.Contains(ruleIDs(out.Findings, false), "G404") {
		t.Fatalf("findings %v; want G404", ruleIDs(out.Findings, false))
	}
	// The go command records small things for a listing (the compiled
	// files of each package); compiling runtime and the packages above
	// it again adds some 20 MB (it did with -trimpath).
	if added := cacheBytes(t, cache) - before; added > 2<<20 {
		t.Errorf("the scan added %d bytes of outputs to the build cache after go build ./...; want the compiled dependencies reused", added)
	}
}
