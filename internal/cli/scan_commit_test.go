package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/cli"
	"github.com/vigil-sec/vigil/internal/gittest"
)

// TestScanCommitIsNeverAnOption: `vigil scan --commit REV REPO` with a
// revision or a repository git could read as an option, or a remote
// helper that runs a command, exits 2 naming the input, and runs nothing.
func TestScanCommitIsNeverAnOption(t *testing.T) {
	t.Parallel()
	r := gittest.New(t)
	r.Commit("one", map[string]string{"main.go": "package main\n"})
	tests := []struct {
		name         string
		commit, repo func(marker string) string
	}{
		{"upload-pack rev, path", func(m string) string { return "--upload-pack=touch " + m + ";" }, func(string) string { return r.Dir }},
		{"upload-pack rev, file url", func(m string) string { return "--upload-pack=touch " + m + ";" }, func(string) string { return "file://" + r.Dir }},
		{"rev -c", func(string) string { return "-c" }, func(string) string { return r.Dir }},
		{"rev --output", func(m string) string { return "--output=" + m }, func(string) string { return r.Dir }},
		{"repo upload-pack", func(string) string { return "main" }, func(m string) string { return "--upload-pack=touch " + m + ";" }},
		{"repo ext helper", func(string) string { return "main" }, func(m string) string { return "ext::sh -c touch% " + m }},
		{"repo ssh host option", func(string) string { return "main" }, func(m string) string { return "ssh://-oProxyCommand=touch%20" + m + "/r" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			marker := filepath.Join(t.TempDir(), "pwned")
			commit, repo := tt.commit(marker), tt.repo(marker)
			code, _, stderr := vigil(t, "scan", "-q", "--commit", commit, "--", repo)
			if _, err := os.Stat(marker); err == nil {
				t.Fatalf("vigil scan --commit %q %q ran a command", commit, repo)
			}
			named := commit
			if commit == "main" {
				named = repo
			}
			if code != cli.ExitUsage || !strings.Contains(stderr, named) {
				t.Errorf("exit %d, stderr %q; want exit %d naming %q", code, stderr, cli.ExitUsage, named)
			}
		})
	}
}
