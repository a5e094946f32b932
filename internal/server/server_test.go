package server_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/gittest"
	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/internal/jobs"
	"github.com/vigil-sec/vigil/internal/schematest"
	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/scanner/image/imagetest"
)

// env is a running server on a fresh store, and an API client holding a
// token of the admin client that Bootstrap made.
type env struct {
	t   *testing.T
	db  *store.DB
	srv *server.Server
	ts  *httptest.Server
	api *http.Client // authenticated
	// sealKey is the server's: another process of the installation needs it.
	sealKey []byte
}

func setup(t *testing.T, dialect store.Dialect) *env {
	t.Helper()
	e, _ := newEnv(t, dialect, envConfig{start: true, modify: func(c *server.Config) {
		c.Jobs.Workers = 2
		c.RegistryToken = "registry-token"
	}})
	if _, again, err := e.srv.Bootstrap(context.Background()); err != nil || again {
		t.Fatalf("second Bootstrap = %v, %v; want nothing created", again, err)
	}
	return e
}

// logBuffer keeps what the server logged, for tests that check what a
// log line must never hold, and passes it on to t.Log.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	t   *testing.T
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Log(strings.TrimSuffix(string(p), "\n"))
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// envConfig sets up newEnv.
type envConfig struct {
	start  bool // start the workers
	modify func(*server.Config)
}

// openStore is a migrated store, with the job queue's tables, and an
// empty blob directory: what every server of these tests stands on.
func openStore(t *testing.T, dialect store.Dialect) (*store.DB, *store.Blobs) {
	t.Helper()
	db := storetest.Open(t, dialect)
	if err := jobs.Migrate(t.Context(), db, nil); err != nil {
		t.Fatal(err)
	}
	blobs, err := store.NewBlobs(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	return db, blobs
}

// newEnv is setup with a configurable server; its log (at debug level)
// is returned too.
func newEnv(t *testing.T, dialect store.Dialect, ec envConfig) (*env, *logBuffer) {
	t.Helper()
	ctx := context.Background()
	db, blobs := openStore(t, dialect)
	key := make([]byte, server.SealKeySize)
	rand.Read(key)
	jcfg := jobs.DefaultConfig()
	jcfg.Workers = 4
	jcfg.PollInterval = 200 * time.Millisecond
	jcfg.Backoff = func(int) time.Duration { return 100 * time.Millisecond }
	logs := &logBuffer{t: t}
	cfg := server.Config{
		DB: db, Blobs: blobs, SealKey: key, Jobs: &jcfg,
		// The tests' peers (repositories, registries, forges, receivers)
		// are on loopback, over http and file://.
		Outbound: &httpx.OutboundPolicy{AllowLoopback: true, Schemes: []string{"https", "http", "ssh", "git", "file"}},
		Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if ec.modify != nil {
		ec.modify(&cfg)
	}
	srv, err := server.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	creds, created, err := srv.Bootstrap(ctx)
	if err != nil || !created {
		t.Fatalf("Bootstrap = %v, %v; want a new admin client", created, err)
	}
	if ec.start {
		if err := srv.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := srv.Stop(ctx); err != nil {
				t.Errorf("stop: %v", err)
			}
		})
	}
	ts := httptest.NewTLSServer(srv.Handler())
	t.Cleanup(ts.Close)
	cc := clientcredentials.Config{ClientID: creds.ClientID, ClientSecret: creds.ClientSecret, TokenURL: ts.URL + "/oauth2/token"}
	octx := context.WithValue(ctx, oauth2.HTTPClient, ts.Client())
	return &env{t: t, db: db, srv: srv, ts: ts, api: cc.Client(octx), sealKey: cfg.SealKey}, logs
}

// do sends a JSON request with the authenticated client and decodes the
// answer into out (if not nil); it returns the status.
func (e *env) do(method, path string, body, out any) int {
	e.t.Helper()
	return e.doWith(e.api, method, path, body, out)
}

func (e *env) doWith(c *http.Client, method, path string, body, out any) int {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s → %d: decode %q: %v", method, path, resp.StatusCode, b, err)
		}
	}
	if resp.StatusCode >= 400 {
		e.t.Logf("%s %s → %d %s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode
}

type scanJSON struct {
	ID       string
	Status   string
	Error    string
	Engines  map[string]string
	Timings  map[string]float64
	Findings []struct {
		RuleID string `json:"rule_id"`
		File   string
	}
	SBOM *struct{ Components int }
	Gate struct{ Decision string }
}

// waitScan polls the scan until it has finished. The deadline is generous:
// it catches a hang, not slowness.
func (e *env) waitScan(id string) scanJSON {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var s scanJSON
		if code := e.do("GET", "/api/v1/scans/"+id, nil, &s); code != 200 {
			e.t.Fatalf("GET scan %s: %d", id, code)
		}
		if s.Status == "succeeded" || s.Status == "failed" {
			return s
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("scan %s still %s after 5 minutes", id, s.Status)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type gateJSON struct {
	Decision string
	Reasons  []struct{ Code, Message string }
	Scan     string
}

const goMod = "module example.com/app\n\ngo 1.22\n"

// repo makes a Go module with a clean commit on main, then a commit that
// uses math/rand (gosec G404).
func repo(t *testing.T) (r *gittest.Repo, clean, weak string) {
	r = gittest.New(t)
	clean = r.Commit("clean", map[string]string{
		"go.mod":  goMod,
		"main.go": "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }\n",
	})
	weak = r.Commit("weak random", map[string]string{
		"main.go": "package main\n\nimport \"math/rand\"\n\nfunc main() { println(rand.Intn(3)) }\n",
	})
	return r, clean, weak
}

const webhookSecret = "0123456789abcdef-secret"

func (e *env) createProject(name, repoURL string) {
	e.t.Helper()
	var p struct{ ID, Name string }
	code := e.do("POST", "/api/v1/projects", map[string]any{
		"name": name, "repo_url": repoURL, "default_branch": "main", "webhook_secret": webhookSecret,
		"schedule": "0 3 * * *", "policy": "fail_on:\n  severity: high\n",
	}, &p)
	if code != http.StatusCreated || p.Name != name {
		e.t.Fatalf("create project: %d %+v", code, p)
	}
}

func TestEndToEnd(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)
		r, clean, weak := repo(t)
		e.createProject("app", "file://"+r.Dir)

		// Validation and duplicates.
		var apiErr struct{ Code, Message string }
		if code := e.do("POST", "/api/v1/projects", map[string]any{"name": "x", "repo_url": "file://" + r.Dir, "webhook_secret": webhookSecret, "schedule": "not cron"}, &apiErr); code != 400 || !strings.Contains(apiErr.Message, "schedule") {
			t.Errorf("bad schedule: %d %+v", code, apiErr)
		}
		if code := e.do("POST", "/api/v1/projects", map[string]any{"name": "app", "repo_url": "file://" + r.Dir, "webhook_secret": webhookSecret}, &apiErr); code != 409 {
			t.Errorf("duplicate project: %d %+v", code, apiErr)
		}

		ids := map[string]string{}
		for _, c := range []string{clean, weak} {
			var ref struct{ ID, Status string }
			if code := e.do("POST", "/api/v1/scans", map[string]any{"project": "app", "commit": c}, &ref); code != 202 || ref.Status != "queued" {
				t.Fatalf("POST scan %s: %d %+v", c, code, ref)
			}
			var again struct{ ID string }
			if code := e.do("POST", "/api/v1/scans", map[string]any{"project": "app", "commit": c}, &again); code != 200 || again.ID != ref.ID {
				t.Fatalf("repeated POST scan: %d %+v, want 200 and %s", code, again, ref.ID)
			}
			ids[c] = ref.ID
		}

		want := map[string]string{clean: "pass", weak: "fail"}
		for _, c := range []string{clean, weak} {
			s := e.waitScan(ids[c])
			if s.Status != "succeeded" {
				t.Fatalf("scan of %s: %s (%s)", c, s.Status, s.Error)
			}
			if s.Engines["sast"] == "" || s.Engines["sbom"] == "" || s.SBOM == nil {
				t.Errorf("scan of %s: engines %v, sbom %v", c, s.Engines, s.SBOM)
			}
			if s.Gate.Decision != want[c] {
				t.Errorf("scan of %s: gate %s, want %s", c, s.Gate.Decision, want[c])
			}
			var g gateJSON
			if code := e.do("GET", "/api/v1/gate?project=app&commit="+c, nil, &g); code != 200 || g.Decision != want[c] {
				t.Errorf("gate of %s: %d %+v, want %s", c, code, g, want[c])
			}
			if !strings.HasSuffix(g.Scan, "/api/v1/scans/"+ids[c]) {
				t.Errorf("gate scan URL %q", g.Scan)
			}
		}

		// The SARIF of the weak commit is valid and names G404.
		resp, err := e.api.Get(e.ts.URL + "/api/v1/scans/" + ids[weak] + "/sarif")
		if err != nil {
			t.Fatal(err)
		}
		sarif, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(sarif), "G404") {
			t.Fatalf("SARIF: %d %.200s", resp.StatusCode, sarif)
		}
		schematest.Validate(t, schematest.SARIF210, sarif)
		for _, f := range []string{"cyclonedx", "spdx"} {
			resp, err := e.api.Get(e.ts.URL + "/api/v1/scans/" + ids[clean] + "/" + f)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("%s download: %d", f, resp.StatusCode)
			}
		}

		// Listing pages through both scans.
		var page struct {
			Scans      []struct{ ID string }
			NextCursor string `json:"next_cursor"`
		}
		if code := e.do("GET", "/api/v1/scans?project=app&limit=1", nil, &page); code != 200 || len(page.Scans) != 1 || page.NextCursor == "" {
			t.Fatalf("list page 1: %d %+v", code, page)
		}
		first := page.Scans[0].ID
		if code := e.do("GET", "/api/v1/scans?project=app&limit=1&cursor="+page.NextCursor, nil, &page); code != 200 || len(page.Scans) != 1 || page.Scans[0].ID == first {
			t.Fatalf("list page 2: %d %+v", code, page)
		}

		// An unscanned commit is unknown, and asking queues nothing.
		third := r.Commit("third", map[string]string{"README": "hi\n"})
		var g gateJSON
		if code := e.do("GET", "/api/v1/gate?project=app&commit="+third, nil, &g); code != 200 || g.Decision != "unknown" {
			t.Errorf("gate of an unscanned commit: %d %+v", code, g)
		}
		if _, err := e.db.FindCommitScan(context.Background(), mustProject(t, e.db, "app"), third); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("asking the gate queued a scan: %v", err)
		}

		// Auth: no token is 401, a token without the scope is 403.
		if code := e.doWith(e.ts.Client(), "GET", "/api/v1/projects", nil, nil); code != 401 {
			t.Errorf("no token: %d, want 401", code)
		}
		id, secret, err := e.srv.OAuth().CreateClient(context.Background(), "reader", []string{"gate:read"})
		if err != nil {
			t.Fatal(err)
		}
		cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: e.ts.URL + "/oauth2/token"}
		reader := cc.Client(context.WithValue(context.Background(), oauth2.HTTPClient, e.ts.Client()))
		if code := e.doWith(reader, "POST", "/api/v1/scans", map[string]any{"project": "app", "commit": clean}, nil); code != 403 {
			t.Errorf("gate:read posting a scan: %d, want 403", code)
		}
		if code := e.doWith(reader, "GET", "/api/v1/gate?project=app&commit="+clean, nil, nil); code != 200 {
			t.Errorf("gate:read reading the gate: %d, want 200", code)
		}

		// Public endpoints.
		for _, p := range []string{"/healthz", "/readyz", "/api/v1/openapi.json"} {
			if code := e.doWith(e.ts.Client(), "GET", p, nil, nil); code != 200 {
				t.Errorf("GET %s: %d", p, code)
			}
		}
		resp, err = e.ts.Client().Get(e.ts.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		m, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, name := range []string{"vigil_scan_queued", "vigil_scan_engine_duration_seconds_bucket{engine=\"sast\"", "vigil_gate_decisions_total{decision=\"fail\",source=\"api\"}"} {
			if !strings.Contains(string(m), name) {
				t.Errorf("/metrics lacks %s", name)
			}
		}
	})
}

func mustProject(t *testing.T, db *store.DB, name string) string {
	t.Helper()
	p, err := db.GetProjectByName(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return p.ID
}

func countScans(t *testing.T, db *store.DB) int {
	t.Helper()
	scans, _, err := db.ListScans(context.Background(), ci.ScanFilter{Limit: ci.MaxScanLimit})
	if err != nil {
		t.Fatal(err)
	}
	return len(scans)
}

func TestGitHubPushWebhook(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)
		r, clean, weak := repo(t)
		e.createProject("app", "file://"+r.Dir)

		body := []byte(fmt.Sprintf(`{"ref":"refs/heads/main","before":"%s","after":"%s","repository":{"clone_url":"file://%s"},
			"commits":[{"id":"%s"},{"id":"%s"}]}`, strings.Repeat("0", 40), weak, r.Dir, clean, weak))
		send := func(sig string) (int, string) {
			req, _ := http.NewRequest("POST", e.ts.URL+"/hooks/github/app", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-GitHub-Event", "push")
			req.Header.Set("X-GitHub-Delivery", "d-1")
			req.Header.Set("X-Hub-Signature-256", sig)
			resp, err := e.ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		mac := hmac.New(sha256.New, []byte(webhookSecret))
		mac.Write(body)
		good := "sha256=" + hex.EncodeToString(mac.Sum(nil))

		if code, b := send("sha256=" + strings.Repeat("ab", 32)); code != 401 {
			t.Fatalf("bad signature: %d %s, want 401", code, b)
		}
		if n := countScans(t, e.db); n != 0 {
			t.Fatalf("a bad signature enqueued %d scans", n)
		}
		if code, b := send(good); code != 202 || !strings.Contains(b, `"enqueued":2`) {
			t.Fatalf("push: %d %s, want 202 enqueued 2", code, b)
		}
		if code, b := send(good); code != 202 || !strings.Contains(b, `"enqueued":0`) {
			t.Fatalf("redelivery: %d %s, want 202 enqueued 0", code, b)
		}
		if n := countScans(t, e.db); n != 2 {
			t.Fatalf("%d scans after the redelivery, want 2", n)
		}
		s, err := e.db.FindCommitScan(context.Background(), mustProject(t, e.db, "app"), weak)
		if err != nil {
			t.Fatal(err)
		}
		// The worker records the branch it finds the commit on.
		e.waitScan(s.ID)
		if s, err = e.db.GetScan(context.Background(), s.ID); err != nil {
			t.Fatal(err)
		}
		if s.Branch != "main" {
			t.Errorf("branch of the pushed scan: %q, want main", s.Branch)
		}
	})
}

func TestAdmission(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)
		fx := imagetest.New(t)

		var ref struct{ ID, Status string }
		if code := e.do("POST", "/api/v1/scans", map[string]any{"image": fx.Ref}, &ref); code != 202 {
			t.Fatalf("POST image scan: %d", code)
		}
		if s := e.waitScan(ref.ID); s.Status != "succeeded" {
			t.Fatalf("image scan: %s (%s)", s.Status, s.Error)
		}
		var g gateJSON
		if code := e.do("GET", "/api/v1/gate?image="+fx.Digest, nil, &g); code != 200 || g.Decision != "pass" {
			t.Fatalf("gate by digest: %d %+v", code, g)
		}

		review := func(img string) (allowed bool, msg string) {
			body := fmt.Sprintf(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1",
				"kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},
				"operation":"CREATE","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},
				"spec":{"containers":[{"name":"c","image":%q}]}}}}`, img)
			resp, err := e.ts.Client().Post(e.ts.URL+"/admission/v1/validate", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out struct {
				Response struct {
					UID     string
					Allowed bool
					Status  struct{ Message string }
				}
			}
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Response.UID != "u-1" {
				t.Fatalf("admission answer: %d %v %+v", resp.StatusCode, err, out)
			}
			return out.Response.Allowed, out.Response.Status.Message
		}
		if ok, msg := review(fx.Ref); !ok {
			t.Errorf("scanned image by tag denied: %s", msg)
		}
		if ok, msg := review(fx.Registry + "/vigil/fixture@" + fx.Digest); !ok {
			t.Errorf("scanned image by digest denied: %s", msg)
		}
		if ok, msg := review(fx.Registry + "/vigil/never-scanned:v1"); ok {
			t.Errorf("unknown image admitted")
		} else if !strings.Contains(msg, "never-scanned") {
			t.Errorf("denial does not name the image: %s", msg)
		}
	})
}
