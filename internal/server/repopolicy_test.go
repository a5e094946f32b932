package server_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/cli"
	"github.com/vigil-sec/vigil/internal/gittest"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

// push delivers a signed GitHub push of the commits to the branch of the
// project "app" and waits for their scans.
func (e *env) push(r *gittest.Repo, branch string, commits ...string) {
	e.t.Helper()
	ids := make([]string, len(commits))
	for i, c := range commits {
		ids[i] = fmt.Sprintf(`{"id":%q}`, c)
	}
	body := []byte(fmt.Sprintf(`{"ref":"refs/heads/%s","before":"%s","after":"%s","repository":{"clone_url":"file://%s"},"commits":[%s]}`,
		branch, strings.Repeat("0", 40), commits[len(commits)-1], r.Dir, strings.Join(ids, ",")))
	mac := hmac.New(sha256.New, []byte(webhookSecret))
	mac.Write(body)
	req, _ := http.NewRequest("POST", e.ts.URL+"/hooks/github/app", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", "d-"+commits[0])
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		e.t.Fatalf("push: %d %s", resp.StatusCode, b)
	}
	pid := mustProject(e.t, e.db, "app")
	for _, c := range commits {
		sc, err := e.db.FindCommitScan(context.Background(), pid, c)
		if err != nil {
			e.t.Fatalf("scan of pushed commit %s: %v", c, err)
		}
		e.waitScan(sc.ID)
	}
}

type policyGateJSON struct {
	Decision string
	Reasons  []struct{ Code, Message string }
	Policy   *struct {
		Origin           string
		Version          int
		RepositoryFile   string `json:"repository_file"`
		RepositorySHA256 string `json:"repository_sha256"`
	}
}

func (e *env) policyGate(commit string) policyGateJSON {
	e.t.Helper()
	var g policyGateJSON
	if code := e.do("GET", "/api/v1/gate?project=app&commit="+commit, nil, &g); code != http.StatusOK {
		e.t.Fatalf("gate of %s: %d", commit, code)
	}
	return g
}

// cliScan runs `vigil scan --commit` on the repository (the CLI's code
// path, in process) and returns its exit code and the decision it wrote.
func cliScan(t *testing.T, repoDir, commit string) (int, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "r.json")
	var stdout, stderr bytes.Buffer
	code := cli.Main(context.Background(), []string{"scan", "-q", "--engines", "sast", "-o", "json=" + out, "--commit", commit, repoDir},
		cli.Stdio{In: strings.NewReader(""), Out: &stdout, Err: &stderr})
	t.Logf("vigil scan --commit %s → %d: %s", commit, code, stderr.String())
	var rep struct{ Gate struct{ Decision string } }
	if b, err := os.ReadFile(out); err == nil {
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
	}
	return code, rep.Gate.Decision
}

const weakMain = "package main\n\nimport \"math/rand\"\n\nfunc main() { println(rand.Intn(3)) }\n"

func repoWaiver(expires string) string {
	return "waivers:\n  - rule: G404\n    path: main.go\n    reason: dice, not secrets\n    owner: sec@example.com\n    expires: " + expires + "\n"
}

// The server reads the policy file committed at the scanned commit and
// decides as `vigil scan --commit` does on the same commit.
func TestRepositoryPolicyDecidesLikeTheCLI(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)
		ctx := context.Background()
		tomorrow := time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly)
		yesterday := time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)

		r := gittest.New(t)
		plain := r.Commit("weak random", map[string]string{"go.mod": goMod, "main.go": weakMain})
		waived := r.Commit("waive it", map[string]string{".vigil.yaml": repoWaiver(tomorrow)})
		expired := r.Commit("waiver expired", map[string]string{".vigil.yaml": repoWaiver(yesterday)})
		excluded := r.Commit("exclude the rule", map[string]string{".vigil.yaml": "rules:\n  exclude: [G404]\n"})
		malformed := r.Commit("no owner", map[string]string{".vigil.yaml": "waivers:\n  - rule: G404\n    reason: r\n    expires: 2099-01-01\n"})
		// A symbolic link that a server following it would read from its
		// own disk: refused, never followed.
		secret := filepath.Join(t.TempDir(), "secret.yaml")
		if err := os.WriteFile(secret, []byte("rules:\n  exclude: [G404]\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(r.Dir, ".vigil.yaml"))
		if err := os.Symlink(secret, filepath.Join(r.Dir, ".vigil.yaml")); err != nil {
			t.Fatal(err)
		}
		r.Git("add", "--all")
		r.Git("commit", "--quiet", "-m", "link the policy")
		linked := r.Git("rev-parse", "HEAD")

		e.createProject("app", "file://"+r.Dir) // its policy is the default one
		e.push(r, "main", plain, waived, expired, excluded, malformed, linked)

		for _, tt := range []struct {
			name, commit, want string
		}{
			{"no policy file", plain, "fail"},
			{"an active waiver", waived, "pass"},
			{"an expired waiver", expired, "fail"},
			{"an excluded rule", excluded, "pass"},
		} {
			code, cliDecision := cliScan(t, r.Dir, tt.commit)
			g := e.policyGate(tt.commit)
			if g.Decision != tt.want || cliDecision != tt.want {
				t.Errorf("%s: server %s, CLI %s (exit %d); want both %s; server reasons %+v", tt.name, g.Decision, cliDecision, code, tt.want, g.Reasons)
			}
			if tt.commit != plain && (g.Policy == nil || g.Policy.Origin != "repository" || g.Policy.RepositoryFile != ".vigil.yaml at "+tt.commit || len(g.Policy.RepositorySHA256) != 64) {
				t.Errorf("%s: policy %+v, want the repository's file", tt.name, g.Policy)
			}
		}
		if g := e.policyGate(expired); !hasPolicyCode(g, "WAIVER_EXPIRED", ".vigil.yaml at "+expired+":2") {
			t.Errorf("expired waiver not named with its file: %+v", g.Reasons)
		}

		// A malformed file fails the gate naming it; the CLI refuses it too.
		if code, _ := cliScan(t, r.Dir, malformed); code != 2 {
			t.Errorf("CLI on a malformed policy: exit %d, want 2", code)
		}
		if g := e.policyGate(malformed); g.Decision != "fail" || !hasPolicyCode(g, "BAD_POLICY", ".vigil.yaml at "+malformed) || !hasPolicyCode(g, "BAD_POLICY", "waivers[0].owner") {
			t.Errorf("gate of a malformed policy file: %+v, want fail BAD_POLICY naming the file and field", g)
		}
		if g := e.policyGate(linked); g.Decision != "fail" || !hasPolicyCode(g, "BAD_POLICY", "symbolic link") {
			t.Errorf("gate of a symlinked policy file: %+v, want fail BAD_POLICY", g)
		}

		// A project policy beyond the defaults: the repository can only
		// tighten it.
		pid := mustProject(t, e.db, "app")
		if _, err := e.db.AddPolicy(ctx, pid, "fail_on:\n  severity: high\nlicenses:\n  deny: [GPL-3.0-only]\n"); err != nil {
			t.Fatal(err)
		}
		if g := e.policyGate(excluded); g.Decision != "fail" || g.Policy == nil || g.Policy.Origin != "combined" {
			t.Errorf("repository exclusion under a set server policy: %+v, want fail (combined)", g)
		}
		if g := e.policyGate(waived); g.Decision != "pass" {
			t.Errorf("repository waiver under a set server policy: %+v, want pass", g)
		}
		if _, err := e.db.AddPolicy(ctx, pid, "licenses:\n  deny: [GPL-3.0-only]\nrepository:\n  allow_exclusions: true\n"); err != nil {
			t.Fatal(err)
		}
		if g := e.policyGate(excluded); g.Decision != "pass" {
			t.Errorf("repository exclusion the server allows: %+v, want pass", g)
		}
		if _, err := e.db.AddPolicy(ctx, pid, "repository:\n  ignore_waivers: true\n"); err != nil {
			t.Fatal(err)
		}
		if g := e.policyGate(waived); g.Decision != "fail" {
			t.Errorf("repository waiver the server ignores: %+v, want fail", g)
		}
		if _, err := e.db.AddPolicy(ctx, pid, "repository:\n  ignore: true\n"); err != nil {
			t.Fatal(err)
		}
		if g := e.policyGate(excluded); g.Decision != "fail" || g.Policy == nil || g.Policy.Origin != "server" || g.Policy.RepositorySHA256 != "" {
			t.Errorf("repository file the server ignores: %+v, want fail by the server's policy", g)
		}
		if g := e.policyGate(malformed); hasPolicyCode(g, "BAD_POLICY", "") {
			t.Errorf("an ignored malformed file still fails as BAD_POLICY: %+v", g)
		}
	})
}

func hasPolicyCode(g policyGateJSON, code, inMessage string) bool {
	for _, r := range g.Reasons {
		if r.Code == code && strings.Contains(r.Message, inMessage) {
			return true
		}
	}
	return false
}

// A scheduled rescan, which may reuse the cache without a checkout, is
// judged with the policy file of its commit as its first scan was.
func TestRescanKeepsTheRepositoryPolicy(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)
		r := gittest.New(t)
		r.Commit("weak random", map[string]string{"go.mod": goMod, "main.go": weakMain})
		head := r.Commit("waive it", map[string]string{".vigil.yaml": repoWaiver(time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly))})
		if code := e.do("POST", "/api/v1/projects", map[string]any{
			"name": "cron", "repo_url": "file://" + r.Dir, "default_branch": "main",
			"webhook_secret": webhookSecret, "schedule": "@every 1s",
		}, nil); code != http.StatusCreated {
			t.Fatalf("create project: %d", code)
		}
		deadline := time.Now().Add(5 * time.Minute)
		for {
			if time.Now().After(deadline) {
				t.Fatal("no succeeded rescan after 5 minutes")
			}
			time.Sleep(250 * time.Millisecond)
			var l struct {
				Scans []struct {
					ID, Status, Commit string
					RescanOf           string `json:"rescan_of"`
				}
			}
			if code := e.do("GET", "/api/v1/scans?project=cron&limit=500", nil, &l); code != 200 {
				t.Fatalf("list scans: %d", code)
			}
			for _, s := range l.Scans {
				if s.RescanOf == "" || s.Status != "succeeded" || s.Commit != head {
					continue
				}
				var sc scanJSON
				if code := e.do("GET", "/api/v1/scans/"+s.ID, nil, &sc); code != 200 {
					t.Fatalf("GET rescan: %d", code)
				}
				if sc.Gate.Decision != "pass" {
					t.Errorf("gate of the rescan: %s, want pass (the commit's waiver)", sc.Gate.Decision)
				}
				return
			}
		}
	})
}
