package sbom_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/CycloneDX/cyclonedx-go"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/vigil-sec/vigil/scanner"
	"github.com/vigil-sec/vigil/scanner/image"
	"github.com/vigil-sec/vigil/scanner/image/imagetest"
	"github.com/vigil-sec/vigil/scanner/sbom"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if syftCLI.dir != "" {
		os.RemoveAll(syftCLI.dir)
	}
	os.Exit(code)
}

func TestEngine(t *testing.T) {
	t.Parallel()
	e := sbom.Engine(nil)
	if e.ID != "sbom" {
		t.Errorf("ID = %q, want sbom", e.ID)
	}
	// Test binaries carry no module build info, so this is the fallback
	// constant: it must follow go.mod.
	gomod, err := os.ReadFile(filepath.Join(repoRoot(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(gomod), "\tgithub.com/anchore/syft "+e.Version+"\n") {
		t.Errorf("Version = %q, but go.mod requires another syft: update fallbackSyftVersion", e.Version)
	}
	for kind, want := range map[scanner.Kind]bool{
		scanner.KindDir: true, scanner.KindGit: true, scanner.KindImage: true, "tarball": false,
	} {
		if got := e.Applies(&scanner.Target{Kind: kind}); got != want {
			t.Errorf("Applies(%s) = %v, want %v", kind, got, want)
		}
	}
}

func TestImage(t *testing.T) {
	t.Parallel()
	fx := imagetest.New(t)
	ctx := t.Context()
	target, err := image.Resolve(ctx, fx.Ref, image.Options{})
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu     sync.Mutex
		stages []string
	)
	cfg := &sbom.Config{Logger: testLogger(t), Progress: func(m string) {
		mu.Lock()
		defer mu.Unlock()
		stages = append(stages, m)
	}}
	start := time.Now()
	out, err := sbom.Engine(cfg).Run(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	s := out.SBOM
	t.Logf("%d components in %v; stages: %q", len(s.Components), time.Since(start).Round(time.Millisecond), stages)
	if !slices.Contains(stages, "reading image layers") || !slices.Contains(stages, "cataloging packages") {
		t.Errorf("stages %q lack reading or cataloging", stages)
	}

	t.Run("dpkg", func(t *testing.T) {
		for _, d := range imagetest.Debs {
			c := find(t, s, "deb", d.Name)
			if c == nil {
				continue
			}
			if c.Version != d.Version {
				t.Errorf("%s: version %q, want %q", d.Name, c.Version, d.Version)
			}
			if c.Layer != fx.DpkgLayer.DiffID {
				t.Errorf("%s: layer %s, want the dpkg layer %s", d.Name, c.Layer, fx.DpkgLayer.DiffID)
			}
			if !slices.Contains(c.Licenses, d.License) {
				t.Errorf("%s: licenses %q lack %s", d.Name, c.Licenses, d.License)
			}
			if !strings.HasPrefix(c.PURL, "pkg:deb/debian/"+d.Name+"@") {
				t.Errorf("%s: purl %q", d.Name, c.PURL)
			}
			if !slices.Contains(c.Locations, "/var/lib/dpkg/status") {
				t.Errorf("%s: locations %q lack /var/lib/dpkg/status", d.Name, c.Locations)
			}
		}
		if c := findAny(s, "deb", "libatomic1"); c != nil {
			t.Errorf("found %+v, which only the arm64 image has", *c)
		}
	})

	t.Run("go binary", func(t *testing.T) {
		for _, want := range []struct{ name, version string }{
			{imagetest.GoModule, ""},
			{imagetest.GoDep, imagetest.GoDepVer},
			{"stdlib", fx.GoVersion},
		} {
			c := find(t, s, "go-module", want.name)
			if c == nil {
				continue
			}
			if want.version != "" && c.Version != want.version {
				t.Errorf("%s: version %q, want %q", want.name, c.Version, want.version)
			}
			if c.Layer != fx.GoLayer.DiffID {
				t.Errorf("%s: layer %s, want the Go binary's layer %s", want.name, c.Layer, fx.GoLayer.DiffID)
			}
			if !slices.Contains(c.Locations, imagetest.GoBinPath) {
				t.Errorf("%s: locations %q lack %s", want.name, c.Locations, imagetest.GoBinPath)
			}
		}
	})

	t.Run("sorted", func(t *testing.T) {
		sorted := slices.IsSortedFunc(s.Components, func(a, b scanner.Component) int {
			return strings.Compare(a.Type+"\x00"+a.Name+"\x00"+a.Version, b.Type+"\x00"+b.Name+"\x00"+b.Version)
		})
		if !sorted {
			t.Errorf("components are not sorted by type, name and version: %v", s.Components)
		}
	})

	t.Run("same from an OCI layout", func(t *testing.T) {
		local, err := image.Resolve(ctx, "oci:"+fx.OCIDir, image.Options{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := sbom.Generate(ctx, local, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Components, s.Components) {
			t.Errorf("components differ between the registry and the OCI layout:\nregistry: %v\nlayout:   %v", s.Components, got.Components)
		}
	})

	t.Run("cyclonedx", func(t *testing.T) { checkCycloneDX(t, s) })
	t.Run("spdx", func(t *testing.T) { checkSPDX(t, s) })
	t.Run("syft CLI", func(t *testing.T) { checkSyftCLI(t, "oci-dir:"+fx.OCIDir, s) })
}

func TestDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/project")); err != nil {
		t.Fatal(err)
	}
	target := &scanner.Target{Kind: scanner.KindDir, Ref: dir, Path: dir}
	s, err := sbom.Generate(t.Context(), target, &sbom.Config{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d components", len(s.Components))

	for _, want := range []struct {
		typ, name, version, location, license string
	}{
		{"go-module", "github.com/google/go-cmp", "v0.7.0", "go.mod", ""},
		{"go-module", "github.com/google/uuid", "v1.6.0", "go.mod", ""},
		{"npm", "left-pad", "1.3.0", "package-lock.json", "WTFPL"},
		{"npm", "ms", "2.1.3", "package-lock.json", "MIT"},
	} {
		c := find(t, s, want.typ, want.name)
		if c == nil {
			continue
		}
		if c.Version != want.version {
			t.Errorf("%s: version %q, want %q", want.name, c.Version, want.version)
		}
		if !slices.Contains(c.Locations, want.location) {
			t.Errorf("%s: locations %q lack %q", want.name, c.Locations, want.location)
		}
		if want.license != "" && !slices.Contains(c.Licenses, want.license) {
			t.Errorf("%s: licenses %q lack %s", want.name, c.Licenses, want.license)
		}
		if c.PURL == "" {
			t.Errorf("%s: no purl", want.name)
		}
	}
	for _, c := range s.Components {
		if c.Layer != "" {
			t.Errorf("%s: a directory has no layers, got %s", c.Name, c.Layer)
		}
		for _, l := range c.Locations {
			if filepath.IsAbs(l) {
				t.Errorf("%s: location %q is not relative to the directory", c.Name, l)
			}
		}
	}

	t.Run("cyclonedx", func(t *testing.T) { checkCycloneDX(t, s) })
	t.Run("spdx", func(t *testing.T) { checkSPDX(t, s) })
	t.Run("syft CLI", func(t *testing.T) { checkSyftCLI(t, "dir:"+dir, s) })
}

func TestGenerateErrors(t *testing.T) {
	t.Parallel()
	for _, target := range []*scanner.Target{
		{Kind: scanner.KindDir, Ref: "nowhere", Path: filepath.Join(t.TempDir(), "nowhere")},
		{Kind: scanner.KindDir, Ref: "no path"},
		{Kind: scanner.KindImage, Ref: "example.com/unresolved:v1"},
	} {
		_, err := sbom.Generate(t.Context(), target, nil)
		if !errors.Is(err, scanner.ErrUsage) {
			t.Errorf("%s target %q: got %v, want a usage error", target.Kind, target.Ref, err)
		}
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	dir := t.TempDir()
	_, err := sbom.Generate(ctx, &scanner.Target{Kind: scanner.KindDir, Ref: dir, Path: dir}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled scan: got %v, want context.Canceled", err)
	}
}

func TestEncodeWithoutDocument(t *testing.T) {
	t.Parallel()
	readBack := &scanner.SBOM{Components: []scanner.Component{{Name: "zlib1g", Version: "1.2.13", Type: "deb"}}}
	var buf bytes.Buffer
	for name, err := range map[string]error{
		"cyclonedx json": sbom.EncodeCycloneDX(&buf, readBack, false),
		"cyclonedx xml":  sbom.EncodeCycloneDX(&buf, readBack, true),
		"spdx":           sbom.EncodeSPDX(&buf, readBack),
		"nil sbom":       sbom.EncodeSPDX(&buf, nil),
	} {
		if !errors.Is(err, sbom.ErrNoDocument) {
			t.Errorf("%s: got %v, want ErrNoDocument", name, err)
		}
	}
	if buf.Len() != 0 {
		t.Errorf("wrote %q without a document", buf.String())
	}
}

// checkCycloneDX writes s as CycloneDX 1.6 JSON and XML, validates the
// JSON against the official schema and reads the XML back.
func checkCycloneDX(t *testing.T, s *scanner.SBOM) {
	var js, xml bytes.Buffer
	if err := sbom.EncodeCycloneDX(&js, s, false); err != nil {
		t.Fatal(err)
	}
	if err := sbom.EncodeCycloneDX(&xml, s, true); err != nil {
		t.Fatal(err)
	}

	var fromJSON, fromXML cyclonedx.BOM
	if err := cyclonedx.NewBOMDecoder(bytes.NewReader(js.Bytes()), cyclonedx.BOMFileFormatJSON).Decode(&fromJSON); err != nil {
		t.Fatal(err)
	}
	if err := cyclonedx.NewBOMDecoder(bytes.NewReader(xml.Bytes()), cyclonedx.BOMFileFormatXML).Decode(&fromXML); err != nil {
		t.Fatalf("reading the XML back: %v", err)
	}
	for name, bom := range map[string]*cyclonedx.BOM{"json": &fromJSON, "xml": &fromXML} {
		if bom.SpecVersion != cyclonedx.SpecVersion1_6 {
			t.Errorf("%s: specVersion %s, want 1.6", name, bom.SpecVersion)
		}
		if bom.Components == nil {
			t.Fatalf("%s: no components", name)
		}
		purls := map[string]bool{}
		for _, c := range *bom.Components {
			purls[c.PackageURL] = true
		}
		for _, c := range s.Components {
			if c.PURL != "" && !purls[c.PURL] {
				t.Errorf("%s: no component with purl %s", name, c.PURL)
			}
		}
	}
	if nj, nx := len(*fromJSON.Components), len(*fromXML.Components); nj != nx || nj < len(s.Components) {
		t.Errorf("%d components in JSON, %d in XML, want the same and at least %d", nj, nx, len(s.Components))
	}
	validate(t, "cyclonedx/bom-1.6.schema.json", js.Bytes())
}

// checkSPDX writes s as SPDX 2.3 JSON and validates it.
func checkSPDX(t *testing.T, s *scanner.SBOM) {
	var buf bytes.Buffer
	if err := sbom.EncodeSPDX(&buf, s); err != nil {
		t.Fatal(err)
	}
	type spdxPackage struct {
		Name        string `json:"name"`
		VersionInfo string `json:"versionInfo"`
	}
	var doc struct {
		SPDXVersion string        `json:"spdxVersion"`
		Packages    []spdxPackage `json:"packages"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.SPDXVersion != "SPDX-2.3" {
		t.Errorf("spdxVersion %q, want SPDX-2.3", doc.SPDXVersion)
	}
	for _, c := range s.Components {
		if !slices.Contains(doc.Packages, spdxPackage{c.Name, c.Version}) {
			t.Errorf("SPDX lacks package %s %s", c.Name, c.Version)
		}
	}
	validate(t, "spdx/spdx-2.3.schema.json", buf.Bytes())
}

// validate checks doc against an official schema in ../shared/schemas
// (or $VIGIL_SCHEMAS), skipping when the folder is absent.
func validate(t *testing.T, rel string, doc []byte) {
	t.Helper()
	dir := os.Getenv("VIGIL_SCHEMAS")
	if dir == "" {
		dir = filepath.Join(filepath.Dir(repoRoot(t)), "shared", "schemas")
	}
	if _, err := os.Stat(filepath.Join(dir, rel)); err != nil {
		t.Skipf("official schema %s not found in %s (put shared/schemas beside the repository or set VIGIL_SCHEMAS): %v", rel, dir, err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	// The CycloneDX schema refers to spdx.schema.json and
	// jsf-0.82.schema.json through its $id: register every schema under its
	// $id so that nothing is fetched.
	schemas, _ := filepath.Glob(filepath.Join(dir, filepath.Dir(rel), "*.json"))
	for _, p := range schemas {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		s, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if err := c.AddResource(p, s); err != nil {
			t.Fatal(err)
		}
		if m, ok := s.(map[string]any); ok {
			if id, ok := m["$id"].(string); ok && id != "" {
				if err := c.AddResource(id, s); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	sch, err := c.Compile(filepath.Join(dir, rel))
	if err != nil {
		t.Fatalf("compiling %s: %v", rel, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("not valid against %s: %#v", rel, err)
	}
}

var syftCLI struct {
	once      sync.Once
	dir, path string
	err       error
}

// checkSyftCLI runs the syft CLI of the version in go.mod on source and
// checks that every package it lists is among s's components.
func checkSyftCLI(t *testing.T, source string, s *scanner.SBOM) {
	syftCLI.once.Do(func() {
		syftCLI.dir, syftCLI.err = os.MkdirTemp("", "vigil-syft-cli-")
		if syftCLI.err != nil {
			return
		}
		syftCLI.path = filepath.Join(syftCLI.dir, "syft")
		cmd := exec.Command("go", "build", "-o", syftCLI.path, "github.com/anchore/syft/cmd/syft")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			syftCLI.err = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if syftCLI.err != nil {
		t.Skipf("cannot build the syft CLI (go build github.com/anchore/syft/cmd/syft from the repository root): %v", syftCLI.err)
	}

	cmd := exec.CommandContext(t.Context(), syftCLI.path, "scan", source, "-o", "syft-json", "-q")
	cmd.Dir = t.TempDir() // no .syft.yaml from the repository
	cmd.Env = append(os.Environ(), "SYFT_CHECK_FOR_APP_UPDATE=false", "XDG_CONFIG_HOME="+t.TempDir(), "XDG_CACHE_HOME="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("syft scan %s: %v\n%s", source, err, stderr.Bytes())
	}
	var doc struct {
		Artifacts []struct {
			Name    string `json:"name"`
			Version string `json:"version"`
			Type    string `json:"type"`
		} `json:"artifacts"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("reading syft-json: %v", err)
	}
	if len(doc.Artifacts) == 0 {
		t.Fatalf("the syft CLI found nothing in %s", source)
	}
	for _, a := range doc.Artifacts {
		if !slices.ContainsFunc(s.Components, func(c scanner.Component) bool {
			return c.Name == a.Name && c.Version == a.Version && c.Type == a.Type
		}) {
			t.Errorf("the syft CLI lists %s %s %s, the engine does not", a.Type, a.Name, a.Version)
		}
	}
	t.Logf("the syft CLI lists %d packages, the engine %d", len(doc.Artifacts), len(s.Components))
}

func find(t *testing.T, s *scanner.SBOM, typ, name string) *scanner.Component {
	t.Helper()
	c := findAny(s, typ, name)
	if c == nil {
		t.Errorf("no %s component %s among %v", typ, name, s.Components)
	}
	return c
}

func findAny(s *scanner.SBOM, typ, name string) *scanner.Component {
	for i, c := range s.Components {
		if c.Type == typ && c.Name == name {
			return &s.Components[i]
		}
	}
	return nil
}

// repoRoot is the directory holding go.mod above the test's directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no go.mod above %s", wd)
		}
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
