package bundle_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/tooltest"
	"github.com/vigil-sec/vigil/reports/attest"
	"github.com/vigil-sec/vigil/reports/bundle"
)

// section returns the commands of README.txt's section that starts with
// heading: its lines indented by four spaces, unindented, up to the next
// numbered heading.
func section(t *testing.T, readme, heading string) string {
	t.Helper()
	i := strings.Index(readme, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README.txt has no section %q", heading)
	}
	rest := readme[i+len(heading)+2:]
	if j := regexp.MustCompile(`\n\d\. `).FindStringIndex(rest); j != nil {
		rest = rest[:j[0]]
	}
	var cmds []string
	for _, line := range strings.Split(rest, "\n") {
		if cmd, ok := strings.CutPrefix(line, "    "); ok {
			cmds = append(cmds, cmd)
		}
	}
	if len(cmds) == 0 {
		t.Fatalf("section %q has no commands", heading)
	}
	return strings.Join(cmds, "\n") + "\n"
}

// readmeSetup builds a bundle, extracts it into dir/bundle, saves the
// public key as dir/report-key.pem as README.txt says, and returns the
// bundle's folder and README.txt.
func readmeSetup(t *testing.T, f *fixture) (string, string) {
	t.Helper()
	dir := t.TempDir()
	folder := filepath.Join(dir, "bundle")
	if err := os.Rename(extract(t, f.build(t)), folder); err != nil {
		t.Fatal(err)
	}
	keyPEM, err := attest.MarshalPEM(f.signer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report-key.pem"), keyPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(folder, bundle.ReadmeName))
	if err != nil {
		t.Fatal(err)
	}
	return folder, string(readme)
}

// run runs a script with sh in dir and returns its output and error.
func run(t *testing.T, dir, script string, env ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestOpenSSLFollowsREADME runs README.txt's OpenSSL commands as written,
// with Debian's openssl: the signature verifies and every file's digest
// matches; a changed file and a changed payload are caught.
func TestOpenSSLFollowsREADME(t *testing.T) {
	t.Parallel()
	tooltest.Need(t, "openssl", "openssl")
	tooltest.Need(t, "sha256sum", "coreutils")
	f := setup(t)
	folder, readme := readmeSetup(t, f)
	script := section(t, readme, "3. With OpenSSL only")
	if !strings.Contains(script, "openssl dgst -sha256 -verify ../report-key.pem") {
		t.Fatalf("the OpenSSL section is not what this test expects:\n%s", script)
	}
	out, err := run(t, folder, "set -e\n"+script)
	if err != nil {
		t.Fatalf("the README's OpenSSL commands failed: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Verified OK") {
		t.Errorf("openssl did not verify:\n%s", out)
	}
	for _, name := range []string{"README.txt", "empty.txt", "sast.sarif", "sbom.cdx.json", "sboms/app.spdx.json", "summary.html"} {
		if !strings.Contains(out, name+": OK") {
			t.Errorf("sha256sum did not check %s:\n%s", name, out)
		}
	}

	// A file changed by one byte.
	path := filepath.Join(folder, "sast.sarif")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[0] ^= 1
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, folder, "set -e\n"+script); err == nil || !strings.Contains(out, "sast.sarif: FAILED") {
		t.Errorf("a changed file passed: %v\n%s", err, out)
	}

	// The payload changed (its signature kept).
	line, err := os.ReadFile(filepath.Join(folder, bundle.AttestationName))
	if err != nil {
		t.Fatal(err)
	}
	line = editPayload(t, line, func(p []byte) []byte { return []byte(strings.Replace(string(p), "1.4.0", "1.4.1", 1)) })
	if err := os.WriteFile(filepath.Join(folder, bundle.AttestationName), line, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, folder, "set -e\n"+script); err == nil || strings.Contains(out, "Verified OK") {
		t.Errorf("a changed payload passed: %v\n%s", err, out)
	}
}

// TestCosignFollowsREADME runs README.txt's cosign commands as written
// when a cosign v2 binary is on PATH: every file verifies, a changed file
// does not, nothing does under another key. CI does not build cosign (see
// DEVELOPMENT.md: it takes over 20 minutes cold).
func TestCosignFollowsREADME(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("cosign"); err != nil {
		t.Skip("cosign is not on PATH; to run this test: GOBIN=$PWD/bin go install github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5 and PATH=$PWD/bin:$PATH")
	}
	f := setup(t)
	folder, readme := readmeSetup(t, f)
	script := section(t, readme, "2. With cosign v2")
	env := []string{"HOME=" + t.TempDir()} // cosign caches under $HOME/.sigstore
	out, err := run(t, folder, script, env...)
	if err != nil {
		t.Fatalf("the README's cosign commands failed: %v\n%s", err, out)
	}
	if n := strings.Count(out, "Verified OK"); n != 6 || strings.Contains(out, "NOT VERIFIED") {
		t.Errorf("cosign verified %d files, want 6:\n%s", n, out)
	}

	path := filepath.Join(folder, "summary.html")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, ' '), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, folder, script, env...)
	if err != nil {
		t.Fatalf("the README's cosign commands failed: %v\n%s", err, out)
	}
	if n := strings.Count(out, "Verified OK"); n != 5 || !strings.Contains(out, "NOT VERIFIED: summary.html") {
		t.Errorf("cosign after summary.html changed: %d verified:\n%s", n, out)
	}

	// Another key verifies nothing.
	other, _, err := attest.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	otherPEM, err := attest.MarshalPEM(other.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(folder, "..", "report-key.pem"), otherPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, folder, script, env...)
	if err != nil {
		t.Fatalf("the README's cosign commands failed: %v\n%s", err, out)
	}
	if n := strings.Count(out, "Verified OK"); n != 0 || strings.Count(out, "NOT VERIFIED") != 6 {
		t.Errorf("cosign with another key: %d verified:\n%s", n, out)
	}
}
