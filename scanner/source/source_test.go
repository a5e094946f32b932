package source_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/gittest"
	"github.com/vigil-sec/vigil/scanner"
	"github.com/vigil-sec/vigil/scanner/source"
)

// repo makes a real git repository with one commit per content of
// file.txt, tags the first "first", and returns its path and the commits'
// SHAs, oldest first.
func repo(t *testing.T, contents ...string) (string, []string) {
	t.Helper()
	r := gittest.New(t)
	var shas []string
	for _, c := range contents {
		shas = append(shas, r.Commit("commit "+c, map[string]string{"file.txt": c}))
	}
	r.Git("tag", "first", shas[0])
	return r.Dir, shas
}

func TestCheckoutEachCommit(t *testing.T) {
	t.Parallel()
	dir, shas := repo(t, "one", "two", "three")
	want := map[string]string{shas[0]: "one", shas[1]: "two", shas[2]: "three", "first": "one", "main": "three", "": "three"}
	for _, ref := range []string{dir, "file://" + dir} {
		for rev, content := range want {
			ws, err := source.Checkout(context.Background(), ref, rev)
			if err != nil {
				t.Fatalf("Checkout(%q, %q): %v", ref, rev, err)
			}
			got, err := os.ReadFile(filepath.Join(ws.Target.Path, "file.txt"))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != content {
				t.Errorf("Checkout(%q, %q) content = %q, want %q", ref, rev, got, content)
			}
			if ws.Target.Kind != scanner.KindGit || len(ws.Target.Commit) != 40 || ws.Target.Ref != ref {
				t.Errorf("Checkout(%q, %q) target = %+v", ref, rev, ws.Target)
			}
			path := ws.Target.Path
			if err := ws.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("workspace %s still exists after Close", path)
			}
		}
	}
}

func TestCheckoutBadInput(t *testing.T) {
	t.Parallel()
	dir, _ := repo(t, "one")
	plain := t.TempDir()
	tests := []struct {
		name, repo, rev, wantInMsg string
	}{
		{"missing path", filepath.Join(plain, "nope"), "", "does not exist"},
		{"not a repository", plain, "", "not a git repository"},
		{"unknown rev", dir, "no-such-branch", `"no-such-branch" names no commit`},
		{"unknown sha", dir, strings.Repeat("ab", 20), "names no commit"},
		{"missing file url", "file://" + filepath.Join(plain, "nope"), "", "cloning"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ws, err := source.Checkout(context.Background(), tt.repo, tt.rev)
			if err == nil {
				ws.Close()
				t.Fatalf("Checkout(%q, %q) succeeded, want an error", tt.repo, tt.rev)
			}
			if !errors.Is(err, scanner.ErrUsage) {
				t.Errorf("error %q is not a usage error", err)
			}
			if !strings.Contains(err.Error(), tt.wantInMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantInMsg)
			}
		})
	}
}

func TestIsRepoURL(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"https://example.com/a/b.git": true,
		"file:///tmp/repo":            true,
		"git@github.com:org/repo.git": true,
		"./repo":                      false,
		"/tmp/repo":                   false,
		"registry:5000/repo:tag":      false,
	} {
		if got := source.IsRepoURL(s); got != want {
			t.Errorf("IsRepoURL(%q) = %v, want %v", s, got, want)
		}
	}
}
