package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/cli"
	"github.com/vigil-sec/vigil/internal/store"
)

// vigil login saves the server and the credentials (0600), and the server
// commands then need neither flags nor environment; the environment still
// overrides; bad credentials save nothing; logout forgets.
func TestLoginThenServerCommands(t *testing.T) {
	s := serveAPI(t, store.SQLite) // sets VIGIL_CLIENT_ID/SECRET to the admin client's
	dir := t.TempDir()
	t.Setenv("VIGIL_CONFIG_DIR", dir)
	saved := filepath.Join(dir, "login.json")

	// Wrong credentials: refused, nothing saved.
	id := os.Getenv("VIGIL_CLIENT_ID")
	t.Setenv("VIGIL_CLIENT_SECRET", "wrong-secret-of-the-right-length")
	if code, _, stderr := vigil(t, s.with("login")...); code != cli.ExitUsage && code != cli.ExitScanFailed {
		t.Errorf("login with a wrong secret: exit %d, stderr %s", code, stderr)
	}
	if _, err := os.Stat(saved); err == nil {
		t.Fatal("a refused login was saved")
	}
	t.Setenv("VIGIL_CLIENT_SECRET", s.secret)

	code, out, stderr := vigil(t, s.with("login")...)
	if code != 0 || !strings.Contains(out, "logged in to "+s.base) {
		t.Fatalf("login: exit %d\n%s%s", code, out, stderr)
	}
	st, err := os.Stat(saved)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("saved login: %v, mode %v; want 0600", err, st.Mode().Perm())
	}
	var l map[string]string
	b, _ := os.ReadFile(saved)
	if err := json.Unmarshal(b, &l); err != nil || l["server"] != s.base || l["client_id"] != id || l["client_secret"] != s.secret || l["fingerprint"] == "" {
		t.Errorf("saved %s: %v", b, err)
	}

	// No flags, no environment: the saved login serves.
	t.Setenv("VIGIL_CLIENT_ID", "")
	t.Setenv("VIGIL_CLIENT_SECRET", "")
	t.Setenv("VIGIL_SERVER", "")
	if code, out, stderr := vigil(t, "projects", "list", "--json"); code != 0 || !strings.Contains(out, `"projects"`) {
		t.Errorf("projects list after login: exit %d\n%s%s", code, out, stderr)
	}
	// The environment overrides what is saved.
	t.Setenv("VIGIL_CLIENT_SECRET", "wrong-secret-of-the-right-length")
	t.Setenv("VIGIL_CLIENT_ID", id)
	if code, _, _ := vigil(t, "projects", "list"); code == 0 {
		t.Error("a wrong secret in the environment was not used over the saved one")
	}
	t.Setenv("VIGIL_CLIENT_ID", "")
	t.Setenv("VIGIL_CLIENT_SECRET", "")

	// A login others may read is refused, not used.
	if err := os.Chmod(saved, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := vigil(t, "projects", "list"); code != cli.ExitUsage || !strings.Contains(stderr, "chmod 600") {
		t.Errorf("a world-readable login: exit %d, stderr %s", code, stderr)
	}
	if err := os.Chmod(saved, 0o600); err != nil {
		t.Fatal(err)
	}

	if code, out, _ := vigil(t, "logout"); code != 0 || !strings.Contains(out, "removed") {
		t.Errorf("logout: exit %d %s", code, out)
	}
	if code, _, stderr := vigil(t, "projects", "list"); code != cli.ExitUsage || !strings.Contains(stderr, "vigil login") {
		t.Errorf("after logout: exit %d, stderr %s", code, stderr)
	}
}
