package cli_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/reports/attest"
	"github.com/vigil-sec/vigil/reports/bundle"
)

// verifySetup builds a signed bundle in a temp dir: bundle.zip, the same
// extracted in bundle/, and the public key as report-key.pem and
// report-keys.json. It returns the dir and the signer.
func verifySetup(t *testing.T) (string, *attest.Signer) {
	t.Helper()
	dir := t.TempDir()
	signer, _, err := attest.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	report := &attest.AuditReport{
		Release:   attest.Release{Product: "prod-1", ProductName: "Widget", Version: "1.4.0", ReleasedAt: at},
		Recipient: attest.Recipient{Tenant: "acme", Name: "ACME Corp"},
		Ticket:    "T-42",
		Scans: []attest.Scan{{
			Target:  attest.Target{Kind: attest.TargetCommit, Project: "app", Repository: "https://git.example.com/app.git", Commit: strings.Repeat("c", 40)},
			Engines: []attest.Engine{{ID: "sast", Version: "v2.30.0"}}, StartedAt: at.Add(-time.Hour), FinishedAt: at,
		}},
	}
	files := []bundle.File{
		bundle.Bytes("sbom.cdx.json", []byte(`{"bomFormat":"CycloneDX"}`)),
		bundle.Bytes("sast.sarif", []byte(`{"version":"2.1.0"}`)),
	}
	var zipped bytes.Buffer
	if _, err := bundle.Build(context.Background(), &zipped, files, report, signer, nil); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "bundle.zip"), zipped.Bytes())
	zr, err := zip.NewReader(bytes.NewReader(zipped.Bytes()), int64(zipped.Len()))
	if err != nil {
		t.Fatal(err)
	}
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
		writeFile(t, filepath.Join(dir, "bundle", f.Name), b)
	}
	pemText, err := attest.MarshalPEM(signer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "report-key.pem"), pemText)
	jwks, err := attest.MarshalJWKS(signer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "report-keys.json"), jwks)
	return dir, signer
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyCommand(t *testing.T) {
	t.Parallel()
	dir, signer := verifySetup(t)
	pemKey, jwksKey := filepath.Join(dir, "report-key.pem"), filepath.Join(dir, "report-keys.json")
	for _, args := range [][]string{
		{"verify", "--key", pemKey, filepath.Join(dir, "bundle.zip")},
		{"verify", "--key", pemKey, filepath.Join(dir, "bundle")},
		{"verify", "--key", jwksKey, filepath.Join(dir, "bundle.zip")},
	} {
		code, out, _ := vigil(t, args...)
		if code != 0 {
			t.Fatalf("vigil %v exited %d", args, code)
		}
		for _, want := range []string{"verified", signer.KeyID(), "Widget (prod-1)", "1.4.0", "ACME Corp (acme)", "T-42",
			"app https://git.example.com/app.git commit " + strings.Repeat("c", 40) + " (sast v2.30.0)", "sast.sarif"} {
			if !strings.Contains(out, want) {
				t.Errorf("vigil %v does not say %q:\n%s", args, want, out)
			}
		}
	}

	code, out, _ := vigil(t, "verify", "--json", "--key", pemKey, filepath.Join(dir, "bundle.zip"))
	var res struct {
		KeyID  string `json:"key_id"`
		Report struct {
			Release struct{ Version string }
		}
		Files []struct{ Name, SHA256 string }
	}
	if err := json.Unmarshal([]byte(out), &res); code != 0 || err != nil {
		t.Fatalf("--json: exit %d, %v\n%s", code, err, out)
	}
	if res.KeyID != signer.KeyID() || res.Report.Release.Version != "1.4.0" || len(res.Files) != 4 {
		t.Errorf("--json = %+v", res)
	}
}

func TestVerifyCommandNotVerified(t *testing.T) {
	t.Parallel()
	dir, _ := verifySetup(t)
	other, _, err := attest.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	otherPEM, err := attest.MarshalPEM(other.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "other.pem"), otherPEM)
	writeFile(t, filepath.Join(dir, "bundle", "sast.sarif"), []byte(`{"version":"2.1.1"}`))
	writeFile(t, filepath.Join(dir, "bundle", "notes.txt"), []byte("added"))

	code, _, stderr := vigil(t, "verify", "--key", filepath.Join(dir, "report-key.pem"), filepath.Join(dir, "bundle"))
	if code != 1 {
		t.Errorf("a changed bundle: exit %d, want 1", code)
	}
	for _, want := range []string{"vigil: not verified: sast.sarif: digest:", "vigil: not verified: notes.txt: added:"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}

	code, _, stderr = vigil(t, "verify", "--key", filepath.Join(dir, "other.pem"), filepath.Join(dir, "bundle.zip"))
	if code != 1 || !strings.Contains(stderr, "attestation.intoto.jsonl: signature:") {
		t.Errorf("another key: exit %d, stderr:\n%s", code, stderr)
	}
}

func TestVerifyCommandUsage(t *testing.T) {
	t.Parallel()
	dir, _ := verifySetup(t)
	key, zipPath := filepath.Join(dir, "report-key.pem"), filepath.Join(dir, "bundle.zip")
	for name, args := range map[string][]string{
		"no key":         {"verify", zipPath},
		"no bundle":      {"verify", "--key", key},
		"two bundles":    {"verify", "--key", key, zipPath, zipPath},
		"missing bundle": {"verify", "--key", key, filepath.Join(dir, "nope.zip")},
		"missing key":    {"verify", "--key", filepath.Join(dir, "nope.pem"), zipPath},
		"not a key":      {"verify", "--key", zipPath, zipPath},
		"unknown flag":   {"verify", "--server", "https://vigil.example.com", zipPath},
	} {
		if code, _, _ := vigil(t, args...); code != 2 {
			t.Errorf("%s: exit %d, want 2", name, code)
		}
	}
}
