// Package imagetest builds real container images for tests, with
// go-containerregistry, and offers them in every form Vigil reads: pushed
// to a registry (ggcr's pkg/registry on loopback), written as an OCI image
// layout, as a `docker save` tarball and as an OCI layout tarball.
//
// The image is Debian-like, in three layers: a dpkg database with the
// packages in Debs (and their copyright files), a small Go binary built
// with the local toolchain (so that its build info lists a main module, a
// dependency and the standard library), and random filler. A second,
// arm64 image with other packages makes a two-platform index with it.
//
//	fx := imagetest.New(t)
//	target, err := image.Resolve(ctx, fx.Ref, image.Options{})
//	// target.Digest == fx.Digest
package imagetest

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"log"
	"math/rand"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Deb is one package in a fixture's dpkg database.
type Deb struct {
	Name    string
	Version string
	Source  string
	License string // an SPDX ID, written as the copyright file's License
}

// The packages of the two images.
var (
	Debs = []Deb{
		{Name: "ca-certificates", Version: "20230311", Source: "ca-certificates", License: "MPL-2.0"},
		{Name: "libffi8", Version: "3.4.4-1", Source: "libffi", License: "MIT"},
		{Name: "zlib1g", Version: "1:1.2.13.dfsg-1", Source: "zlib", License: "Zlib"},
	}
	ArmDebs = []Deb{
		{Name: "libffi8", Version: "3.4.4-1", Source: "libffi", License: "MIT"},
		{Name: "zlib1g", Version: "1:1.2.13.dfsg-1", Source: "zlib", License: "Zlib"},
		{Name: "libatomic1", Version: "12.2.0-14", Source: "gcc-12", License: "GPL-3.0-or-later"},
	}
)

// The Go program in the image.
const (
	GoModule   = "example.com/vigil/fixture-app"
	GoBinPath  = "/usr/local/bin/fixture-app"
	GoDep      = "github.com/google/go-cmp"
	GoDepVer   = "v0.7.0"
	goDepSum   = "github.com/google/go-cmp v0.7.0 h1:wk8382ETsv4JYUZwIsn6YpYiWiBsYLSJiTsyBybVuN8=\n"
	goDepModSm = "github.com/google/go-cmp v0.7.0/go.mod h1:pXiqmnSA92OHEEa9HXL2W4E7lf9JzCmGVUdgjX3N/iU=\n"
)

// Layer identifies one layer of an image.
type Layer struct {
	DiffID string // sha256 of the uncompressed tar, as syft and docker inspect name layers
	Digest string // sha256 of the compressed blob, as the manifest names it
}

// Fixture is the test image, its index, and where they were put.
type Fixture struct {
	Image    v1.Image
	Digest   string // manifest digest of Image
	Platform string // "linux/amd64"
	// The layers of Image, bottom to top.
	DpkgLayer, GoLayer, FillerLayer Layer
	// GoVersion is the toolchain that built the Go binary ("go1.26.8"):
	// the version of its standard library.
	GoVersion string

	ArmImage    v1.Image
	ArmDigest   string // manifest digest of ArmImage, "linux/arm64"
	ArmPlatform string
	// Index lists Image (linux/amd64) and ArmImage (linux/arm64).
	Index v1.ImageIndex

	Registry string // "127.0.0.1:PORT", a registry serving plain HTTP
	Ref      string // Registry/vigil/fixture:v1, the image
	IndexRef string // Registry/vigil/multi:v1, the index

	OCIDir          string // an OCI layout holding the image alone
	IndexOCIDir     string // an OCI layout whose index.json points to Index
	Archive         string // a docker save tarball of the image
	OCIArchive      string // OCIDir as a tarball
	IndexOCIArchive string // IndexOCIDir as a tarball
}

// New builds the images, serves them from a registry on loopback (closed
// when the test ends) and writes them to t.TempDir(). It needs the go
// command to build the Go binary (once per test process).
func New(t testing.TB) *Fixture {
	t.Helper()
	fx := &Fixture{Platform: "linux/amd64", ArmPlatform: "linux/arm64"}

	dpkg, err := DpkgLayer(Debs, "amd64")
	check(t, err)
	bin, goVersion := GoBinary(t)
	fx.GoVersion = goVersion
	goLayer, err := LayerFromFiles(map[string]File{GoBinPath: {Data: bin, Mode: 0o755}})
	check(t, err)
	filler, err := random.Layer(64<<10, types.DockerLayer, random.WithSource(rand.NewSource(1)))
	check(t, err)
	fx.Image, err = Build("amd64", dpkg, goLayer, filler)
	check(t, err)
	fx.Digest = digest(t, fx.Image)
	fx.DpkgLayer, fx.GoLayer, fx.FillerLayer = layerID(t, dpkg), layerID(t, goLayer), layerID(t, filler)

	armDpkg, err := DpkgLayer(ArmDebs, "arm64")
	check(t, err)
	armFiller, err := random.Layer(32<<10, types.DockerLayer, random.WithSource(rand.NewSource(2)))
	check(t, err)
	fx.ArmImage, err = Build("arm64", armDpkg, armFiller)
	check(t, err)
	fx.ArmDigest = digest(t, fx.ArmImage)
	fx.Index = mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: fx.Image, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: fx.ArmImage, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	)

	fx.Registry = Serve(t)
	fx.Ref = fx.Registry + "/vigil/fixture:v1"
	fx.IndexRef = fx.Registry + "/vigil/multi:v1"
	Push(t, fx.Ref, fx.Image)
	Push(t, fx.IndexRef, fx.Index)

	dir := t.TempDir()
	fx.OCIDir = filepath.Join(dir, "oci")
	_, err = layout.Write(fx.OCIDir, empty.Index)
	check(t, err)
	check(t, layout.Path(fx.OCIDir).AppendImage(fx.Image))
	fx.IndexOCIDir = filepath.Join(dir, "oci-index")
	_, err = layout.Write(fx.IndexOCIDir, empty.Index)
	check(t, err)
	check(t, layout.Path(fx.IndexOCIDir).AppendIndex(fx.Index))
	fx.Archive = filepath.Join(dir, "image.tar")
	tag, err := name.NewTag("vigil.test/fixture:v1")
	check(t, err)
	check(t, tarball.WriteToFile(fx.Archive, tag, fx.Image))
	fx.OCIArchive = filepath.Join(dir, "oci.tar")
	TarDir(t, fx.OCIDir, fx.OCIArchive)
	fx.IndexOCIArchive = filepath.Join(dir, "oci-index.tar")
	TarDir(t, fx.IndexOCIDir, fx.IndexOCIArchive)
	return fx
}

// Build makes a linux image of the given architecture from layers, bottom
// first.
func Build(arch string, layers ...v1.Layer) (v1.Image, error) {
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", arch
	cfg.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	return mutate.ConfigFile(img, cfg)
}

// File is one file of a layer.
type File struct {
	Data []byte
	Mode int64 // 0 means 0o644
}

// mtime is every fixture file's modification time, so that layers are
// the same bytes on every run.
var mtime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// LayerFromFiles makes a layer holding files (absolute or relative paths)
// and their parent directories.
func LayerFromFiles(files map[string]File) (v1.Layer, error) {
	b, err := tarFiles(files)
	if err != nil {
		return nil, err
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	})
}

func tarFiles(files map[string]File) ([]byte, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, strings.TrimPrefix(path.Clean("/"+n), "/"))
	}
	slices.Sort(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, n := range names {
		var parents []string
		for d := path.Dir(n); d != "." && !dirs[d]; d = path.Dir(d) {
			parents = append(parents, d)
			dirs[d] = true
		}
		for i := len(parents) - 1; i >= 0; i-- {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: parents[i] + "/", Mode: 0o755, ModTime: mtime}); err != nil {
				return nil, err
			}
		}
		f, ok := files[n]
		if !ok {
			f = files["/"+n]
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: mode, Size: int64(len(f.Data)), ModTime: mtime}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// DpkgLayer makes a layer with a Debian 12 /etc/os-release, a dpkg status
// database listing debs, and each package's machine-readable copyright
// file and file list.
func DpkgLayer(debs []Deb, arch string) (v1.Layer, error) {
	files := map[string]File{
		"etc/os-release": {Data: []byte(`PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
`)},
	}
	var status strings.Builder
	for _, d := range debs {
		doc := "usr/share/doc/" + d.Name + "/copyright"
		fmt.Fprintf(&status, `Package: %s
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 120
Maintainer: Vigil Fixtures <fixtures@vigil.invalid>
Architecture: %s
Source: %s
Version: %s
Description: fixture package %s
 A package that exists only in Vigil's test images.

`, d.Name, arch, d.Source, d.Version, d.Name)
		files[doc] = File{Data: []byte(fmt.Sprintf(`Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: %s

Files: *
Copyright: 2024 Vigil Fixtures
License: %s
`, d.Source, d.License))}
		files["var/lib/dpkg/info/"+d.Name+".list"] = File{Data: []byte("/.\n/usr\n/usr/share\n/usr/share/doc\n/usr/share/doc/" + d.Name + "\n/" + doc + "\n")}
	}
	files["var/lib/dpkg/status"] = File{Data: []byte(status.String())}
	return LayerFromFiles(files)
}

var goBinary struct {
	once    sync.Once
	bin     []byte
	version string
	err     error
}

// GoBinary builds (once per process) a small linux/amd64 Go program, module
// GoModule, that imports GoDep at GoDepVer. It returns the binary and the
// version of the toolchain that built it. The dependency comes from the
// module cache, or the module proxy when the cache lacks it.
func GoBinary(t testing.TB) ([]byte, string) {
	t.Helper()
	goBinary.once.Do(func() {
		goBinary.bin, goBinary.version, goBinary.err = buildGoBinary()
	})
	if goBinary.err != nil {
		t.Fatalf("building the fixture's Go binary: %v", goBinary.err)
	}
	return goBinary.bin, goBinary.version
}

func buildGoBinary() ([]byte, string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return nil, "", err
	}
	dir, err := os.MkdirTemp("", "vigil-fixture-app-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(dir)
	srcs := map[string]string{
		"go.mod": "module " + GoModule + "\n\ngo 1.22\n\nrequire " + GoDep + " " + GoDepVer + "\n",
		"go.sum": goDepSum + goDepModSm,
		"main.go": `package main

import (
	"fmt"

	"github.com/google/go-cmp/cmp"
)

func main() { fmt.Print(cmp.Diff("vigil", "fixture")) }
`,
	}
	for n, s := range srcs {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(s), 0o644); err != nil {
			return nil, "", err
		}
	}
	out := filepath.Join(dir, "fixture-app")
	cmd := exec.Command(goTool, "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOWORK=off", "GOFLAGS=-mod=readonly", "GOTOOLCHAIN=local")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, "", fmt.Errorf("go build: %v\n%s", err, b)
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		return nil, "", err
	}
	v, err := exec.Command(goTool, "env", "GOVERSION").Output()
	if err != nil {
		return nil, "", err
	}
	return bin, strings.TrimSpace(string(v)), nil
}

// Serve starts a registry on loopback for the test and returns its host
// ("127.0.0.1:PORT"). ggcr speaks plain HTTP to loopback hosts.
func Serve(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// Push writes an image or an index to ref, anonymously.
func Push(t testing.TB, ref string, x any) {
	t.Helper()
	PushWith(t, ref, x, authn.NewMultiKeychain())
}

// PushWith writes an image or an index to ref with credentials from kc.
func PushWith(t testing.TB, ref string, x any, kc authn.Keychain) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	opt := remote.WithAuthFromKeychain(kc)
	switch x := x.(type) {
	case v1.Image:
		err = remote.Write(r, x, opt)
	case v1.ImageIndex:
		err = remote.WriteIndex(r, x, opt)
	default:
		err = fmt.Errorf("cannot push a %T", x)
	}
	if err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
}

// TarDir writes the files under dir to a tar file at dst, with paths
// relative to dir, as `tar -C dir -cf dst .` would.
func TarDir(t testing.TB, dir, dst string) {
	t.Helper()
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		src, err := os.Open(p) // #nosec G122 -- test fixture reading a directory the test itself wrote
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("writing %s: %v", dst, err)
	}
}

func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func digest(t testing.TB, img v1.Image) string {
	t.Helper()
	h, err := img.Digest()
	check(t, err)
	return h.String()
}

func layerID(t testing.TB, l v1.Layer) Layer {
	t.Helper()
	diffID, err := l.DiffID()
	check(t, err)
	d, err := l.Digest()
	check(t, err)
	return Layer{DiffID: diffID.String(), Digest: d.String()}
}
