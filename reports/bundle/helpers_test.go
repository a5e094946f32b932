package bundle_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/reports/attest"
	"github.com/vigil-sec/vigil/reports/bundle"
)

// fixture is a signing key and the inputs of a bundle.
type fixture struct {
	signer *attest.Signer
	keys   []attest.PublicKey
	report *attest.AuditReport
	files  []bundle.File
}

func setup(t *testing.T) *fixture {
	t.Helper()
	signer, _, err := attest.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return &fixture{
		signer: signer,
		keys:   []attest.PublicKey{signer.PublicKey()},
		report: &attest.AuditReport{
			Release:   attest.Release{Product: "prod-1", ProductName: "Widget", Version: "1.4.0", ReleasedAt: at},
			Recipient: attest.Recipient{Tenant: "acme", Name: "ACME Corp"},
			Ticket:    "T-42",
			Scans: []attest.Scan{
				{Target: attest.Target{Kind: attest.TargetCommit, Project: "app", Repository: "https://git.example.com/app.git", Commit: strings.Repeat("c", 40)},
					Engines: []attest.Engine{{ID: "sast", Version: "v2.30.0"}}, StartedAt: at.Add(-time.Hour), FinishedAt: at.Add(-time.Minute)},
				{Target: attest.Target{Kind: attest.TargetImage, Image: "registry.example.com/app:1.4.0", Digest: "sha256:" + strings.Repeat("d", 64)},
					Engines: []attest.Engine{{ID: "sbom", Version: "v1.57.1"}}, StartedAt: at.Add(-time.Hour), FinishedAt: at.Add(-time.Minute)},
			},
		},
		files: []bundle.File{
			bundle.Bytes("sbom.cdx.json", []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6"}`+"\n")),
			bundle.Bytes("sast.sarif", []byte(`{"version":"2.1.0","runs":[]}`+"\n")),
			bundle.Bytes("summary.html", []byte("<!doctype html><title>Widget 1.4.0</title>\n")),
			bundle.Bytes("sboms/app.spdx.json", []byte(`{"spdxVersion":"SPDX-2.3"}`)),
			bundle.Bytes("empty.txt", nil),
		},
	}
}

// build builds the fixture's bundle.
func (f *fixture) build(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := bundle.Build(context.Background(), &b, f.files, f.report, f.signer, &bundle.Config{KeyURL: "https://vigil.example.com/.well-known/vigil/report-keys.pem"}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func verifyZip(data []byte, keys []attest.PublicKey) (*bundle.Result, error) {
	return bundle.VerifyZip(context.Background(), bytes.NewReader(data), int64(len(data)), keys)
}

// entries reads every entry of a ZIP.
func entries(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name], err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// entry is a ZIP entry for rezip: a header and its data.
type entry struct {
	hdr  zip.FileHeader
	data []byte
}

// rezip rewrites a ZIP entry by entry, as someone repacking a bundle
// would: edit may change an entry, or drop it by returning false; extra
// entries are appended.
func rezip(t *testing.T, data []byte, edit func(e *entry) bool, extra ...entry) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var all []entry
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		e := entry{hdr: f.FileHeader, data: b}
		if edit == nil || edit(&e) {
			all = append(all, e)
		}
	}
	all = append(all, extra...)
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, e := range all {
		hdr := e.hdr
		w, err := zw.CreateHeader(&hdr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// file is a new regular ZIP entry.
func file(name string, data []byte) entry {
	hdr := zip.FileHeader{Name: name, Method: zip.Deflate}
	hdr.SetMode(0o644)
	return entry{hdr: hdr, data: data}
}

// extract writes the ZIP's files under a new directory and returns it.
func extract(t *testing.T, data []byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, b := range entries(t, data) {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// wantFailure checks that err is a verification failure whose *Error
// values include one about file and check.
func wantFailure(t *testing.T, err error, file, check string) {
	t.Helper()
	if !errors.Is(err, bundle.ErrNotVerified) {
		t.Fatalf("err = %v, want ErrNotVerified", err)
	}
	for _, e := range flatten(err) {
		var be *bundle.Error
		if errors.As(e, &be) && be.File == file && be.Check == check {
			if msg := be.Error(); file != "" && !strings.Contains(msg, file) && !strings.Contains(msg, strconv.Quote(file)) {
				t.Errorf("the message %q does not name %s", be.Error(), file)
			}
			return
		}
	}
	t.Errorf("err = %v, want a %q failure of %q", err, check, file)
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
