package image_test

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/vigil-sec/vigil/internal/imagebuild"
	"github.com/vigil-sec/vigil/scanner"
	"github.com/vigil-sec/vigil/scanner/image"
	"github.com/vigil-sec/vigil/scanner/image/imagetest"
)

func TestResolveForms(t *testing.T) {
	t.Parallel()
	fx := imagetest.New(t)
	dir := t.TempDir()
	gzArchive := gzipFile(t, fx.Archive, filepath.Join(dir, "image.tar.gz"))
	gzOCIArchive := gzipFile(t, fx.OCIArchive, filepath.Join(dir, "oci.tar.gz"))

	refs := []string{
		fx.Ref,
		fx.Registry + "/vigil/fixture@" + fx.Digest,
		"oci:" + fx.OCIDir,
		"archive:" + fx.Archive,
		"archive:" + fx.OCIArchive,
		"archive:" + gzArchive,
		"archive:" + gzOCIArchive,
		// Indexes resolve to the default platform, linux/amd64.
		fx.IndexRef,
		"oci:" + fx.IndexOCIDir,
		"archive:" + fx.IndexOCIArchive,
	}
	for _, ref := range refs {
		t.Run(ref, func(t *testing.T) {
			got, err := image.Resolve(t.Context(), ref, image.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Kind != scanner.KindImage || got.Ref != ref || got.Digest != fx.Digest || got.Platform != "linux/amd64" {
				t.Errorf("got %s %q %s %s, want image %q %s linux/amd64", got.Kind, got.Ref, got.Digest, got.Platform, ref, fx.Digest)
			}
			h, err := got.Image.Digest()
			if err != nil || h.String() != fx.Digest {
				t.Errorf("Image.Digest() = %v, %v; want %s", h, err, fx.Digest)
			}
			// The layers stream and hash to what the manifest says.
			layers, err := got.Image.Layers()
			if err != nil {
				t.Fatal(err)
			}
			want := []imagetest.Layer{fx.DpkgLayer, fx.GoLayer, fx.FillerLayer}
			if len(layers) != len(want) {
				t.Fatalf("got %d layers, want %d", len(layers), len(want))
			}
			for i, l := range layers {
				if d := diffID(t, l); d != want[i].DiffID {
					t.Errorf("layer %d: uncompressed content hashes to %s, want %s", i, d, want[i].DiffID)
				}
			}
		})
	}
}

func TestResolvePlatform(t *testing.T) {
	t.Parallel()
	fx := imagetest.New(t)
	for _, ref := range []string{fx.IndexRef, "oci:" + fx.IndexOCIDir, "archive:" + fx.IndexOCIArchive} {
		for _, tc := range []struct {
			platform, wantDigest, wantPlatform string
		}{
			{"", fx.Digest, "linux/amd64"},
			{"linux/amd64", fx.Digest, "linux/amd64"},
			{"linux/arm64", fx.ArmDigest, "linux/arm64"},
			{"linux/arm64/v8", fx.ArmDigest, "linux/arm64"},
		} {
			got, err := image.Resolve(t.Context(), ref, image.Options{Platform: tc.platform})
			if err != nil {
				t.Errorf("%s --platform %q: %v", ref, tc.platform, err)
				continue
			}
			if got.Digest != tc.wantDigest || got.Platform != tc.wantPlatform {
				t.Errorf("%s --platform %q: got %s %s, want %s %s", ref, tc.platform, got.Digest, got.Platform, tc.wantDigest, tc.wantPlatform)
			}
		}
		_, err := image.Resolve(t.Context(), ref, image.Options{Platform: "linux/s390x"})
		wantUsage(t, err, "linux/s390x", "linux/amd64, linux/arm64")
	}

	// A single image that is not of the asked platform.
	for _, ref := range []string{fx.Ref, "oci:" + fx.OCIDir, "archive:" + fx.Archive} {
		_, err := image.Resolve(t.Context(), ref, image.Options{Platform: "linux/arm64"})
		wantUsage(t, err, "linux/arm64", "linux/amd64")
		if _, err := image.Resolve(t.Context(), ref, image.Options{Platform: "linux/amd64"}); err != nil {
			t.Errorf("%s --platform linux/amd64: %v", ref, err)
		}
	}
}

func TestResolveUsageErrors(t *testing.T) {
	t.Parallel()
	fx := imagetest.New(t)
	dir := t.TempDir()
	notTar := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notTar, []byte(strings.Repeat("not a tarball\n", 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	notLayout := filepath.Join(dir, "empty")
	if err := os.Mkdir(notLayout, 0o755); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")

	for _, tc := range []struct {
		ref, platform string
		wantInMessage string
	}{
		{"", "", "empty"},
		{"Registry.example/UPPER:tag", "", "Registry.example/UPPER:tag"},
		{"example.com/app:bad tag", "", "example.com/app:bad tag"},
		{"oci:" + missing, "", missing},
		{"oci:" + notLayout, "", notLayout},
		{"oci:" + fx.Archive, "", fx.Archive},
		{"archive:" + missing + ".tar", "", missing + ".tar"},
		{"archive:" + notTar, "", notTar},
		{"archive:" + fx.OCIDir, "", fx.OCIDir},
		{fx.Ref, "linux", `"linux"`},
		{fx.Ref, "a/b/c/d", "a/b/c/d"},
		{fx.Registry + "/vigil/fixture:no-such-tag", "", "vigil/fixture:no-such-tag"},
		{fx.Registry + "/vigil/no-such-repo:v1", "", "vigil/no-such-repo:v1"},
	} {
		_, err := image.Resolve(t.Context(), tc.ref, image.Options{Platform: tc.platform})
		wantUsage(t, err, tc.wantInMessage)
	}
}

func TestResolveUnreachableRegistry(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	ref := addr + "/vigil/app:v1"
	start := time.Now()
	_, err = image.Resolve(ctx, ref, image.Options{})
	t.Logf("failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	if err == nil {
		t.Fatal("resolved an image from a closed port")
	}
	if errors.Is(err, scanner.ErrUsage) {
		t.Errorf("an unreachable registry is not a usage error: %v", err)
	}
	if !strings.Contains(err.Error(), ref) {
		t.Errorf("error %q does not name the reference %s", err, ref)
	}
}

// TestResolveKeychain pulls from a registry that demands a password, with
// and without credentials.
func TestResolveKeychain(t *testing.T) {
	t.Parallel()
	fx := imagetest.New(t)
	reg := registry.New()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "ci" || p != "s3cret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="vigil-test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"who are you"}]}`, http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	ref := host + "/vigil/private:v1"
	imagetest.PushWith(t, ref, fx.Image, staticKeychain{&authn.Basic{Username: "ci", Password: "s3cret"}})

	got, err := image.Resolve(t.Context(), ref, image.Options{Keychain: staticKeychain{&authn.Basic{Username: "ci", Password: "s3cret"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != fx.Digest {
		t.Errorf("got digest %s, want %s", got.Digest, fx.Digest)
	}

	_, err = image.Resolve(t.Context(), ref, image.Options{Keychain: staticKeychain{authn.Anonymous}})
	if err == nil || errors.Is(err, scanner.ErrUsage) || !strings.Contains(err.Error(), ref) {
		t.Errorf("anonymous pull of a private image: got %v, want a plain error naming %s", err, ref)
	}
}

func TestResolveProgress(t *testing.T) {
	t.Parallel()
	fx := imagetest.New(t)
	var (
		mu   sync.Mutex
		msgs []string
	)
	got, err := image.Resolve(t.Context(), fx.Ref, image.Options{Progress: func(m string) {
		mu.Lock()
		defer mu.Unlock()
		msgs = append(msgs, m)
	}})
	if err != nil {
		t.Fatal(err)
	}
	layers, err := got.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		diffID(t, l)
	}
	joined := strings.Join(msgs, "\n")
	for _, want := range []string{"resolved " + fx.Ref, "pulling layer 1/3", "pulling layer 3/3"} {
		if !strings.Contains(joined, want) {
			t.Errorf("progress lacks %q:\n%s", want, joined)
		}
	}
	if n := strings.Count(joined, "pulling layer"); n != 3 {
		t.Errorf("got %d layer messages, want 3:\n%s", n, joined)
	}
}

func TestIsImageRef(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"ghcr.io/org/app:1.2", true},
		{"ghcr.io/org/app@sha256:" + strings.Repeat("a", 64), true},
		{"localhost:5000/app", true},
		{"localhost/app:dev", true},
		{"127.0.0.1:5000/vigil/app:v1", true},
		{"oci:./layout", true},
		{"archive:image.tar", true},
		{".", false},
		{"./src", false},
		{"../app", false},
		{"/abs/path", false},
		{"src/app", false},
		{"alpine:3.19", false},
		{"library/alpine", false},
		{"ghcr.io", false},
		{"ghcr.io/Org/App", false},
	} {
		if got := image.IsImageRef(tc.in); got != tc.want {
			t.Errorf("IsImageRef(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func wantUsage(t *testing.T, err error, wantIn ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("got no error, want a usage error naming %q", wantIn)
		return
	}
	if !errors.Is(err, scanner.ErrUsage) {
		t.Errorf("error %q does not wrap scanner.ErrUsage", err)
	}
	for _, w := range wantIn {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not name %q", err, w)
		}
	}
}

func diffID(t *testing.T, l v1.Layer) string {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h, _, err := v1.SHA256(rc)
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

func gzipFile(t *testing.T, src, dst string) string {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	zw := gzip.NewWriter(out)
	if _, err := io.Copy(zw, in); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

type staticKeychain struct{ authn.Authenticator }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return k.Authenticator, nil
}

// An SBOM attached to an image of a layout (an OCI 1.1 artifact whose
// subject is the image, as `make image-sbom`, oras or cosign leave it) is
// not a second image: the layout still resolves to its one image.
func TestResolveLayoutWithAttachedSBOM(t *testing.T) {
	t.Parallel()
	fx := imagetest.New(t)
	dir := filepath.Join(t.TempDir(), "layout")
	if err := os.CopyFS(dir, os.DirFS(fx.OCIDir)); err != nil {
		t.Fatal(err)
	}
	sbom := filepath.Join(t.TempDir(), "sbom.cdx.json")
	if err := os.WriteFile(sbom, []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := imagebuild.AttachSBOM(dir, sbom, imagebuild.SBOMMediaTypes["cyclonedx-json"]); err != nil {
		t.Fatal(err)
	}
	for _, platform := range []string{"", "linux/amd64"} {
		got, err := image.Resolve(t.Context(), "oci:"+dir, image.Options{Platform: platform})
		if err != nil {
			t.Fatalf("--platform %q: %v", platform, err)
		}
		if got.Digest != fx.Digest {
			t.Errorf("--platform %q: resolved %s, want the image %s", platform, got.Digest, fx.Digest)
		}
	}
	// The artifact is not offered as an image of some other platform.
	_, err := image.Resolve(t.Context(), "oci:"+dir, image.Options{Platform: "linux/arm64"})
	wantUsage(t, err, "(it has linux/amd64)")
}
