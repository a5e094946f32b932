package bundle_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigil-sec/vigil/reports/attest"
	"github.com/vigil-sec/vigil/reports/bundle"
)

// TestTamperedZip: every change to a bundle after signing fails, naming
// the file and the check.
func TestTamperedZip(t *testing.T) {
	t.Parallel()
	f := setup(t)
	good := f.build(t)
	other, _, err := attest.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	// Another bundle's attestation, signed by the same key, for the swap.
	f2 := setup(t)
	f2.signer, f2.keys = f.signer, f.keys
	f2.report.Release.Version = "9.9.9"
	otherAttestation := entries(t, f2.build(t))[bundle.AttestationName]

	cases := []struct {
		name        string
		zip         []byte
		keys        []attest.PublicKey
		file, check string
	}{
		{"one byte changed", rezip(t, good, func(e *entry) bool {
			if e.hdr.Name == "sast.sarif" {
				e.data = bytes.Replace(e.data, []byte("2.1.0"), []byte("2.1.1"), 1)
			}
			return true
		}), f.keys, "sast.sarif", bundle.CheckDigest},
		{"a byte appended", rezip(t, good, func(e *entry) bool {
			if e.hdr.Name == "summary.html" {
				e.data = append(e.data, ' ')
			}
			return true
		}), f.keys, "summary.html", bundle.CheckSize},
		{"README changed", rezip(t, good, func(e *entry) bool {
			if e.hdr.Name == bundle.ReadmeName {
				e.data = bytes.Replace(e.data, []byte("openssl"), []byte("OpenSSL"), 1)
			}
			return true
		}), f.keys, bundle.ReadmeName, bundle.CheckDigest},
		{"file added", rezip(t, good, nil, file("extra.txt", []byte("x"))), f.keys, "extra.txt", bundle.CheckAdded},
		{"file added in a folder", rezip(t, good, nil, file("sboms/extra.json", []byte("{}"))), f.keys, "sboms/extra.json", bundle.CheckAdded},
		{"file removed", rezip(t, good, func(e *entry) bool { return e.hdr.Name != "sbom.cdx.json" }), f.keys, "sbom.cdx.json", bundle.CheckMissing},
		{"empty file removed", rezip(t, good, func(e *entry) bool { return e.hdr.Name != "empty.txt" }), f.keys, "empty.txt", bundle.CheckMissing},
		{"attestation removed", rezip(t, good, func(e *entry) bool { return e.hdr.Name != bundle.AttestationName }), f.keys, bundle.AttestationName, bundle.CheckMissing},
		{"payload changed", rezip(t, good, func(e *entry) bool {
			if e.hdr.Name == bundle.AttestationName {
				e.data = editPayload(t, e.data, func(p []byte) []byte { return bytes.Replace(p, []byte("1.4.0"), []byte("1.4.1"), 1) })
			}
			return true
		}), f.keys, bundle.AttestationName, bundle.CheckSignature},
		{"another key", good, []attest.PublicKey{other.PublicKey()}, bundle.AttestationName, bundle.CheckSignature},
		{"keyid absent from the keys", rezip(t, good, func(e *entry) bool {
			if e.hdr.Name == bundle.AttestationName {
				e.data = bytes.Replace(e.data, []byte(f.signer.KeyID()), []byte(other.KeyID()), 1)
			}
			return true
		}), f.keys, bundle.AttestationName, bundle.CheckSignature},
		{"attestation of another bundle", rezip(t, good, func(e *entry) bool {
			if e.hdr.Name == bundle.AttestationName {
				e.data = otherAttestation
			}
			return true
		}), f.keys, bundle.ReadmeName, bundle.CheckDigest},
		{"two envelopes", rezip(t, good, func(e *entry) bool {
			if e.hdr.Name == bundle.AttestationName {
				e.data = append(e.data, e.data...)
			}
			return true
		}), f.keys, bundle.AttestationName, bundle.CheckAttestation},
		{"attestation not JSON", rezip(t, good, func(e *entry) bool {
			if e.hdr.Name == bundle.AttestationName {
				e.data = []byte("not json\n")
			}
			return true
		}), f.keys, bundle.AttestationName, bundle.CheckAttestation},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			res, err := verifyZip(c.zip, c.keys)
			if res != nil {
				t.Errorf("Verify returned a result: %+v", res)
			}
			wantFailure(t, err, c.file, c.check)
		})
	}
}

// TestTamperedDir: the same for an extracted directory.
func TestTamperedDir(t *testing.T) {
	t.Parallel()
	f := setup(t)
	good := f.build(t)
	cases := []struct {
		name        string
		tamper      func(dir string)
		file, check string
	}{
		{"one byte changed", func(dir string) {
			path := filepath.Join(dir, "sbom.cdx.json")
			b, _ := os.ReadFile(path)
			b[2] ^= 1
			os.WriteFile(path, b, 0o644)
		}, "sbom.cdx.json", bundle.CheckDigest},
		{"file added", func(dir string) { os.WriteFile(filepath.Join(dir, ".DS_Store"), nil, 0o644) }, ".DS_Store", bundle.CheckAdded},
		{"file removed", func(dir string) { os.Remove(filepath.Join(dir, "sboms", "app.spdx.json")) }, "sboms/app.spdx.json", bundle.CheckMissing},
		{"symlink to the same content", func(dir string) {
			outside := filepath.Join(t.TempDir(), "sast.sarif")
			b, _ := os.ReadFile(filepath.Join(dir, "sast.sarif"))
			os.WriteFile(outside, b, 0o644)
			os.Remove(filepath.Join(dir, "sast.sarif"))
			os.Symlink(outside, filepath.Join(dir, "sast.sarif"))
		}, "sast.sarif", bundle.CheckEntry},
		{"symlinked folder", func(dir string) {
			outside := t.TempDir()
			os.Rename(filepath.Join(dir, "sboms"), filepath.Join(outside, "sboms"))
			os.Symlink(filepath.Join(outside, "sboms"), filepath.Join(dir, "sboms"))
		}, "sboms", bundle.CheckEntry},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := extract(t, good)
			c.tamper(dir)
			_, err := bundle.Verify(context.Background(), dir, f.keys)
			wantFailure(t, err, c.file, c.check)
		})
	}
	// An empty folder holds no file: it is not an addition.
	dir := extract(t, good)
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := bundle.Verify(context.Background(), dir, f.keys); err != nil {
		t.Errorf("an empty folder: %v", err)
	}
}

// TestAllFailuresReported: several tampered files are each named.
func TestAllFailuresReported(t *testing.T) {
	t.Parallel()
	f := setup(t)
	bad := rezip(t, f.build(t), func(e *entry) bool {
		switch e.hdr.Name {
		case "sast.sarif":
			e.data[0] ^= 1
		case "summary.html":
			return false
		}
		return true
	}, file("new.txt", nil))
	_, err := verifyZip(bad, f.keys)
	wantFailure(t, err, "sast.sarif", bundle.CheckDigest)
	wantFailure(t, err, "summary.html", bundle.CheckMissing)
	wantFailure(t, err, "new.txt", bundle.CheckAdded)
}

// TestPredicateMustNameTheSigner: a statement signed by a trusted key
// whose predicate names another key is refused.
func TestPredicateMustNameTheSigner(t *testing.T) {
	t.Parallel()
	f := setup(t)
	good := f.build(t)
	line := entries(t, good)[bundle.AttestationName]
	bad := rezip(t, good, func(e *entry) bool {
		if e.hdr.Name == bundle.AttestationName {
			e.data = resign(t, f.signer, line, func(p []byte) []byte {
				return bytes.Replace(p, []byte(`"signing_key_id":"`+f.signer.KeyID()), []byte(`"signing_key_id":"someone-else`), 1)
			})
		}
		return true
	})
	_, err := verifyZip(bad, f.keys)
	wantFailure(t, err, bundle.AttestationName, bundle.CheckPredicate)
}

// TestZipAttacks: ZIPs crafted to get around verification.
func TestZipAttacks(t *testing.T) {
	t.Parallel()
	f := setup(t)
	good := f.build(t)
	sarif := entries(t, good)["sast.sarif"]
	symlink := file("link", []byte("/etc/passwd"))
	symlink.hdr.SetMode(fs.ModeSymlink | 0o777)
	dirEntry := file("docs/", nil)
	dirEntry.hdr.SetMode(fs.ModeDir | 0o755)

	cases := []struct {
		name        string
		zip         []byte
		file, check string
	}{
		{"parent traversal", rezip(t, good, nil, file("../evil.sh", []byte("x"))), "../evil.sh", bundle.CheckEntry},
		{"nested traversal", rezip(t, good, nil, file("sboms/../../evil.sh", []byte("x"))), "sboms/../../evil.sh", bundle.CheckEntry},
		{"absolute path", rezip(t, good, nil, file("/tmp/evil.sh", []byte("x"))), "/tmp/evil.sh", bundle.CheckEntry},
		{"backslash", rezip(t, good, nil, file(`..\evil.bat`, []byte("x"))), `..\evil.bat`, bundle.CheckEntry},
		{"control character", rezip(t, good, nil, file("a\nb", []byte("x"))), "a\nb", bundle.CheckEntry},
		{"duplicate entry", rezip(t, good, nil, file("sast.sarif", sarif)), "sast.sarif", bundle.CheckEntry},
		{"duplicate entry, other content first", rezip(t, good, func(e *entry) bool {
			if e.hdr.Name == "sast.sarif" {
				e.data = []byte("evil")
			}
			return true
		}, file("sast.sarif", sarif)), "sast.sarif", bundle.CheckEntry},
		{"case duplicate", rezip(t, good, nil, file("SAST.sarif", sarif)), "SAST.sarif", bundle.CheckEntry},
		{"file and folder", rezip(t, good, nil, file("sast.sarif/x", sarif)), "sast.sarif/x", bundle.CheckEntry},
		{"directory entry", rezip(t, good, nil, dirEntry), "docs/", bundle.CheckEntry},
		{"symlink entry", rezip(t, good, nil, symlink), "link", bundle.CheckEntry},
		{"huge declared size", hugeEntry(t, good, "summary.html"), "summary.html", bundle.CheckSize},
		{"prepended bytes", append([]byte("#!/bin/sh\necho hi\nexit 0\n"), good...), "", bundle.CheckLayout},
		{"appended bytes", append(bytes.Clone(good), "trailer"...), "", bundle.CheckLayout},
		{"local name differs", patchLocalName(t, good, "sast.sarif", "sast.sariX"), "", bundle.CheckLayout},
		{"comment", withComment(t, good), "", bundle.CheckLayout},
		{"not a ZIP", []byte("PK\x03\x04 not really"), "", bundle.CheckZIP},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := verifyZip(c.zip, f.keys)
			wantFailure(t, err, c.file, c.check)
		})
	}
}

func TestVerifyPathErrors(t *testing.T) {
	t.Parallel()
	f := setup(t)
	_, err := bundle.Verify(context.Background(), filepath.Join(t.TempDir(), "nope.zip"), f.keys)
	if !errors.Is(err, fs.ErrNotExist) || errors.Is(err, bundle.ErrNotVerified) {
		t.Errorf("missing path: %v", err)
	}
	if _, err := verifyZip(f.build(t), nil); err == nil || errors.Is(err, bundle.ErrNotVerified) {
		t.Errorf("no keys: %v", err)
	}
}

// editPayload changes the payload of the envelope line, keeping its
// (now wrong) signature.
func editPayload(t *testing.T, line []byte, edit func([]byte) []byte) []byte {
	t.Helper()
	env, err := attest.ParseEnvelope(bytes.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	p, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	env.Payload = base64.StdEncoding.EncodeToString(edit(p))
	out, err := attest.MarshalEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

// resign changes the statement of the envelope line and signs it again.
func resign(t *testing.T, s *attest.Signer, line []byte, edit func([]byte) []byte) []byte {
	t.Helper()
	env, err := attest.ParseEnvelope(bytes.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := base64.StdEncoding.DecodeString(env.Payload)
	var st attest.Statement
	if err := json.Unmarshal(edit(p), &st); err != nil {
		t.Fatal(err)
	}
	signed, err := s.Sign(context.Background(), &st)
	if err != nil {
		t.Fatal(err)
	}
	out, err := attest.MarshalEnvelope(signed)
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

// hugeEntry replaces the named entry by one stored raw whose headers
// declare a terabyte.
func hugeEntry(t *testing.T, data []byte, name string) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		hdr := f.FileHeader
		raw, err := f.OpenRaw()
		if err != nil {
			t.Fatal(err)
		}
		if f.Name == name {
			hdr.UncompressedSize64 = 1 << 40
		}
		w, err := zw.CreateRaw(&hdr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(w, raw); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// patchLocalName overwrites the name in the entry's local header, leaving
// the central directory as it was.
func patchLocalName(t *testing.T, data []byte, name, local string) []byte {
	t.Helper()
	if len(name) != len(local) {
		t.Fatal("the names must have the same length")
	}
	out := bytes.Clone(data)
	i := bytes.Index(out, []byte("PK\x03\x04"))
	for i >= 0 {
		nameAt := i + 30
		if string(out[nameAt:nameAt+len(name)]) == name {
			copy(out[nameAt:], local)
			return out
		}
		next := bytes.Index(out[i+4:], []byte("PK\x03\x04"))
		if next < 0 {
			break
		}
		i += 4 + next
	}
	t.Fatalf("no local header for %s", name)
	return nil
}

// withComment rewrites the ZIP with an archive comment.
func withComment(t *testing.T, data []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if err := zw.SetComment("see https://evil.example"); err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if err := zw.Copy(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
