package imagebuild

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestParseDepends(t *testing.T) {
	// As `apt-cache depends --no-recommends … ca-certificates libc6` prints
	// it on Debian bookworm: a plain dependency, alternatives (the first is
	// taken), a virtual package (its first provider is taken).
	out := []byte(`ca-certificates
  Depends: openssl
 |Depends: debconf
  Depends: <debconf-2.0>
    cdebconf
    debconf
libc6
  Depends: libgcc-s1
  PreDepends: <awk>
    mawk
    gawk
  Breaks: hurd
`)
	got, err := parseDepends(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"openssl", "debconf", "libgcc-s1", "mawk"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseDepends = %q, want %q", got, want)
	}
}

// fakeGoRoot is a toolchain-shaped tree: what Build keeps and what it
// leaves out.
func fakeGoRoot(t *testing.T) string {
	dir := t.TempDir()
	for name, mode := range map[string]os.FileMode{
		"bin/go":                           0o755,
		"src/fmt/print.go":                 0o644,
		"src/fmt/print_test.go":            0o644,
		"src/fmt/testdata/x.txt":           0o644,
		"pkg/tool/linux_amd64/compile":     0o755,
		"test/bench.go":                    0o644,
		"doc/go_spec.html":                 0o644,
		"VERSION":                          0o644,
		"src/cmd/go/testdata/script/a.txt": 0o644,
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(name), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("go", filepath.Join(dir, "bin", "go-link")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func fakeBinary(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "vigil")
	// An ELF header for x86-64 (e_machine 62 at offset 18), then filler.
	head := make([]byte, 64)
	copy(head, "\x7fELF\x02\x01\x01")
	head[18] = 62
	if err := os.WriteFile(p, append(head, "vigil"...), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func build(t *testing.T, bin, goroot string) v1.Image {
	t.Helper()
	img, err := Build(context.Background(), Options{
		Binary: bin, GoRoot: goroot, Version: "1.2.3", Revision: "abc",
		Created: time.Unix(1700000000, 0), WorkDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// files lists every path of the image's file system with its header.
func files(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(h.Name, "/")] = h
	}
}

func TestBuild(t *testing.T) {
	bin, goroot := fakeBinary(t), fakeGoRoot(t)
	img := build(t, bin, goroot)

	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("platform %s/%s, want linux/amd64", cf.OS, cf.Architecture)
	}
	if cf.Config.User != "65532:65532" || cf.Config.Entrypoint[0] != "/usr/local/bin/vigil" || cf.Config.WorkingDir != "/work" {
		t.Errorf("config %+v: want user 65532, entrypoint vigil, working dir /work", cf.Config)
	}
	if cf.Config.Labels["org.opencontainers.image.version"] != "1.2.3" || cf.Config.Labels["org.opencontainers.image.revision"] != "abc" {
		t.Errorf("labels %v", cf.Config.Labels)
	}
	if !cf.Created.Time.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("created %v, want SOURCE_DATE_EPOCH's time", cf.Created)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 3 {
		t.Fatalf("%d layers (%v), want base, go, vigil", len(layers), err)
	}

	fs := files(t, img)
	for name, mode := range map[string]int64{
		"usr/local/bin/vigil":                       0o755,
		"usr/local/go/bin/go":                       0o755,
		"usr/local/go/pkg/tool/linux_amd64/compile": 0o755,
		"usr/local/go/src/fmt/print.go":             0o644,
		"usr/local/go/VERSION":                      0o644,
		"etc/passwd":                                0o644,
		"tmp":                                       0o1777,
	} {
		h, ok := fs[name]
		if !ok {
			t.Errorf("%s missing from the image", name)
			continue
		}
		if h.Mode != mode {
			t.Errorf("%s mode %o, want %o", name, h.Mode, mode)
		}
		if !h.ModTime.Equal(time.Unix(1700000000, 0)) {
			t.Errorf("%s time %v, want SOURCE_DATE_EPOCH's", name, h.ModTime)
		}
	}
	if h := fs["usr/local/go/bin/go-link"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "go" {
		t.Errorf("the toolchain's symlink: %+v", h)
	}
	if h := fs["work"]; h == nil || h.Uid != UID || h.Gid != UID {
		t.Errorf("/work must belong to the image's user: %+v", h)
	}
	for _, gone := range []string{
		"usr/local/go/test/bench.go", "usr/local/go/doc/go_spec.html",
		"usr/local/go/src/fmt/print_test.go", "usr/local/go/src/fmt/testdata/x.txt",
		"usr/local/go/src/cmd/go/testdata/script/a.txt",
	} {
		if _, ok := fs[gone]; ok {
			t.Errorf("%s is in the image; a build never reads it", gone)
		}
	}

	// The same inputs give the same image, byte for byte.
	again := build(t, bin, goroot)
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("two builds of the same inputs: %s and %s", d1, d2)
	}
}

func TestBuildRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	if _, err := Build(ctx, Options{WorkDir: t.TempDir()}); err == nil {
		t.Error("no binary: want an error")
	}
	if _, err := Build(ctx, Options{Binary: filepath.Join(t.TempDir(), "absent"), WorkDir: t.TempDir()}); err == nil {
		t.Error("a missing binary: want an error")
	}
	if _, err := Build(ctx, Options{Binary: fakeBinary(t)}); err == nil {
		t.Error("no work directory: want an error")
	}
}

func TestWriteAndAttachSBOM(t *testing.T) {
	img := build(t, fakeBinary(t), "")
	dir := filepath.Join(t.TempDir(), "image")
	tarPath := filepath.Join(t.TempDir(), "image.tar")
	if err := Write(img, "vigil:1.2.3", dir, tarPath); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()

	// The tarball holds the same image: docker save's manifest format
	// has its own digest, but the config and layers are the same.
	fromTar, err := tarball.ImageFromPath(tarPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	c1, _ := img.ConfigName()
	c2, _ := fromTar.ConfigName()
	l1, _ := img.Layers()
	l2, _ := fromTar.Layers()
	if c1 != c2 || len(l1) != len(l2) {
		t.Fatalf("tarball image config %s with %d layers, want %s with %d", c2, len(l2), c1, len(l1))
	}
	for i := range l1 {
		d1, _ := l1[i].DiffID()
		d2, _ := l2[i].DiffID()
		if d1 != d2 {
			t.Errorf("tarball layer %d: %s, want %s", i, d2, d1)
		}
	}

	sbom := filepath.Join(t.TempDir(), "sbom.cdx.json")
	if err := os.WriteFile(sbom, []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	artifact, err := AttachSBOM(dir, sbom, SBOMMediaTypes["cyclonedx-json"])
	if err != nil {
		t.Fatal(err)
	}

	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, _ := p.ImageIndex()
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 2 {
		t.Fatalf("layout lists %d manifests, want the image and the SBOM", len(im.Manifests))
	}
	raw, err := p.Bytes(artifact)
	if err != nil {
		t.Fatal(err)
	}
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if m.ArtifactType != "application/vnd.cyclonedx+json" || m.Subject == nil || m.Subject.Digest != want {
		t.Fatalf("artifact manifest %s: want a CycloneDX artifact whose subject is %s", raw, want)
	}
	if m.Config.MediaType != "application/vnd.oci.empty.v1+json" || m.Config.Size != 2 {
		t.Errorf("artifact config %+v: want the OCI empty descriptor", m.Config)
	}
	body, err := p.Bytes(m.Layers[0].Digest)
	if err != nil || string(body) != `{"bomFormat":"CycloneDX","specVersion":"1.6"}` {
		t.Errorf("the SBOM blob: %q, %v", body, err)
	}

	// A second image in the layout makes the subject ambiguous.
	if err := p.AppendImage(build(t, fakeBinary(t), fakeGoRoot(t))); err != nil {
		t.Fatal(err)
	}
	if _, err := AttachSBOM(dir, sbom, SBOMMediaTypes["cyclonedx-json"]); err == nil {
		t.Error("two images in the layout: want an error naming the ambiguity")
	}
	notJSON := filepath.Join(t.TempDir(), "x")
	os.WriteFile(notJSON, []byte("nope"), 0o644)
	if _, err := AttachSBOM(t.TempDir(), notJSON, "application/spdx+json"); err == nil {
		t.Error("not a layout: want an error")
	}
}
