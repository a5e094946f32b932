package source_test

import (
	"context"
	"errors"
	"fmt"
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

// TestCheckoutRefusesOptionsAndHelpers: no input reaches git as an option
// or as a remote helper that runs a command. Each attack would create
// marker; none may, and each is a usage error naming the input.
func TestCheckoutRefusesOptionsAndHelpers(t *testing.T) {
	t.Parallel()
	dir, _ := repo(t, "one")
	tests := []struct {
		name      string
		repo, rev func(marker string) string
	}{
		{"upload-pack rev, local path", func(string) string { return dir }, func(m string) string { return "--upload-pack=touch " + m + ";" }},
		{"upload-pack rev, file url", func(string) string { return "file://" + dir }, func(m string) string { return "--upload-pack=touch " + m + ";" }},
		{"rev -c", func(string) string { return dir }, func(m string) string { return "-c" }},
		{"rev --output", func(string) string { return dir }, func(m string) string { return "--output=" + m }},
		{"rev with spaces", func(string) string { return dir }, func(m string) string { return "main --upload-pack=touch " + m }},
		{"rev revision syntax", func(string) string { return dir }, func(string) string { return "main@{upstream}" }},
		{"repo upload-pack", func(m string) string { return "--upload-pack=touch " + m + ";" }, func(string) string { return "" }},
		{"repo ext helper", func(m string) string { return "ext::sh -c touch% " + m }, func(string) string { return "" }},
		{"repo fd helper", func(string) string { return "fd::0" }, func(string) string { return "" }},
		{"repo ssh host option", func(m string) string { return "ssh://-oProxyCommand=touch%20" + m + "/repo" }, func(string) string { return "" }},
		{"repo scp host option", func(m string) string { return "git@-oProxyCommand=touch " + m + ":repo" }, func(string) string { return "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			marker := filepath.Join(t.TempDir(), "pwned")
			repo, rev := tt.repo(marker), tt.rev(marker)
			ws, err := source.Checkout(context.Background(), repo, rev)
			if err == nil {
				ws.Close()
				t.Fatalf("Checkout(%q, %q) succeeded, want an error", repo, rev)
			}
			if _, serr := os.Stat(marker); serr == nil {
				t.Fatalf("Checkout(%q, %q) ran a command: %s exists", repo, rev, marker)
			}
			if !errors.Is(err, scanner.ErrUsage) {
				t.Errorf("error %q is not a usage error", err)
			}
			named := rev
			if named == "" {
				named = repo
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", named)) {
				t.Errorf("error %q does not name the input %q", err, named)
			}
		})
	}
}

// TestGitNeverRunsRemoteHelpers: even when an address is not checked and
// the configuration allows ext::, git is confined to the policy's
// protocols.
func TestGitNeverRunsRemoteHelpers(t *testing.T) {
	t.Setenv("GIT_CONFIG_COUNT", "1")
	t.Setenv("GIT_CONFIG_KEY_0", "protocol.ext.allow")
	t.Setenv("GIT_CONFIG_VALUE_0", "always")
	marker := filepath.Join(t.TempDir(), "pwned")
	for _, p := range []*source.Policy{nil, {Protocols: []string{source.ProtocolHTTPS}}} {
		_, err := p.Git(context.Background(), t.TempDir(), "", "ls-remote", "--", "ext::sh -c touch% "+marker)
		if err == nil {
			t.Errorf("policy %+v: git ls-remote ext:: succeeded", p)
		}
		if _, serr := os.Stat(marker); serr == nil {
			t.Fatalf("policy %+v: git ran the ext:: command", p)
		}
	}
}

func TestCheckRev(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"", "HEAD", "main", "release/1.2", "v1.0.0", "refs/heads/feature-x", "a1b2c3d", strings.Repeat("ab", 20), "user@feature"} {
		if err := source.CheckRev(ok); err != nil {
			t.Errorf("CheckRev(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"-c", "--output=x", "-", "main~1", "HEAD^", "a..b", "a:b", "@", "x@{1}", "a b", "a\nb", "a\x00b", "feature/", "x.lock", ".hidden", "a/.b", "a//b", "x.", `a\b`, "a*", "a?", "a[", strings.Repeat("a", 1025)} {
		err := source.CheckRev(bad)
		if err == nil {
			t.Errorf("CheckRev(%q) = nil, want an error", bad)
			continue
		}
		if !errors.Is(err, scanner.ErrUsage) {
			t.Errorf("CheckRev(%q): %v is not a usage error", bad, err)
		}
	}
}

func TestParseRemote(t *testing.T) {
	t.Parallel()
	for repo, want := range map[string]source.Remote{
		"https://example.com/a/b.git":      {Protocol: "https", Host: "example.com"},
		"http://example.com:8080/a":        {Protocol: "http", Host: "example.com", Port: "8080"},
		"ssh://git@example.com:2222/a.git": {Protocol: "ssh", Host: "example.com", Port: "2222"},
		"git+ssh://example.com/a":          {Protocol: "ssh", Host: "example.com"},
		"git://example.com/a":              {Protocol: "git", Host: "example.com"},
		"git@github.com:org/repo.git":      {Protocol: "ssh", Host: "github.com"},
		"git@[::1]:org/repo.git":           {Protocol: "ssh", Host: "::1"},
		"https://[::1]:8443/r":             {Protocol: "https", Host: "::1", Port: "8443"},
		"file:///srv/git/r":                {Protocol: "file"},
		"/srv/git/r":                       {Protocol: "file"},
		"./r":                              {Protocol: "file"},
	} {
		got, err := source.ParseRemote(repo)
		if err != nil {
			t.Errorf("ParseRemote(%q): %v", repo, err)
			continue
		}
		if got != want {
			t.Errorf("ParseRemote(%q) = %+v, want %+v", repo, got, want)
		}
	}
	for _, bad := range []string{"", "-x", "--upload-pack=x", "ext::sh -c x", "fd::3", "foo::bar", "https+x::http://e",
		"ftp://example.com/r", "file://host/r", "ssh://-oProxyCommand=x/r", "git@-oProxyCommand=x:r", "https:///r",
		"https://e.com/r\nx", "gopher://e.com/r"} {
		if _, err := source.ParseRemote(bad); err == nil || !errors.Is(err, scanner.ErrUsage) {
			t.Errorf("ParseRemote(%q) = %v, want a usage error", bad, err)
		}
	}
	if _, err := source.ParseRemote("https://user:s3cret@example.com/r"); err != nil {
		t.Fatal(err)
	}
	if _, err := source.ParseRemote("ftp://user:s3cret@example.com/r"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %v shows the password", err)
	}
}
