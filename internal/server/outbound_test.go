package server_test

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/internal/store"
)

// TestScanInputNeverReachesGitAsAnOption: a commit, a branch, a default
// branch or a repository URL that git could read as an option or a
// remote helper is refused as bad input, and no command runs.
func TestScanInputNeverReachesGitAsAnOption(t *testing.T) {
	e := setup(t, store.SQLite)
	r, clean, _ := repo(t)
	e.createProject("app", "file://"+r.Dir)
	marker := filepath.Join(t.TempDir(), "pwned")
	before := countScans(t, e.db)
	for _, tt := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"upload-pack commit", map[string]any{"project": "app", "commit": "--upload-pack=touch " + marker + ";"}, "commit"},
		{"option commit", map[string]any{"project": "app", "commit": "-c"}, "commit"},
		{"output commit", map[string]any{"project": "app", "commit": "--output=" + marker}, "commit"},
		{"option branch", map[string]any{"project": "app", "commit": clean, "branch": "--upload-pack=touch " + marker}, "branch"},
		{"revision syntax branch", map[string]any{"project": "app", "commit": clean, "branch": "main@{1}"}, "branch"},
	} {
		var got apiError
		if code := e.do("POST", "/api/v1/scans", tt.body, &got); code != http.StatusBadRequest || got.Code != "INVALID_FIELD" || !strings.HasPrefix(got.Message, tt.field+":") {
			t.Errorf("%s: %d %+v, want 400 INVALID_FIELD naming %s", tt.name, code, got, tt.field)
		}
	}
	for _, tt := range []struct{ name, repo, branch string }{
		{"option repo", "--upload-pack=touch " + marker + ";", "main"},
		{"ext helper", "ext::sh -c touch% " + marker, "main"},
		{"fd helper", "fd::3", "main"},
		{"ssh host option", "ssh://-oProxyCommand=touch%20" + marker + "/r", "main"},
		{"scp host option", "git@-oProxyCommand=touch:r", "main"},
		{"option default branch", "file://" + r.Dir, "--upload-pack=touch " + marker},
		{"revision default branch", "file://" + r.Dir, "main@{1}"},
	} {
		var got apiError
		code := e.do("POST", "/api/v1/projects", map[string]any{
			"name": "bad", "repo_url": tt.repo, "default_branch": tt.branch, "webhook_secret": webhookSecret,
		}, &got)
		if code != http.StatusBadRequest || got.Code != "INVALID_FIELD" {
			t.Errorf("%s: %d %+v, want 400 INVALID_FIELD", tt.name, code, got)
		}
	}
	if n := countScans(t, e.db); n != before {
		t.Errorf("%d scans recorded, want %d: bad input changes nothing", n, before)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a command ran")
	}
}

// fixedResolver answers its names with loopback, as a DNS server under an
// attacker's control (or a rebinding one, at connection time) would.
type fixedResolver map[string]netip.Addr

func (r fixedResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return []netip.Addr{a}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

var loopbackNames = fixedResolver{
	"git.test":      netip.MustParseAddr("127.0.0.1"),
	"forge.test":    netip.MustParseAddr("127.0.0.1"),
	"registry.test": netip.MustParseAddr("127.0.0.1"),
	"hooks.test":    netip.MustParseAddr("::ffff:127.0.0.1"),
}

// counter wraps a handler and counts its requests.
type counter struct {
	h http.Handler
	n atomic.Int32
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.n.Add(1); c.h.ServeHTTP(w, r) }

// gitHTTP serves the repository at dir over git's smart HTTP protocol
// (git http-backend) as /repo.git, and counts the requests.
func gitHTTP(t *testing.T, dir string) (*httptest.Server, *counter) {
	t.Helper()
	backend, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Skipf("git --exec-path: %v", err)
	}
	root := t.TempDir()
	if out, err := exec.Command("git", "clone", "--quiet", "--bare", dir, filepath.Join(root, "repo.git")).CombinedOutput(); err != nil {
		t.Fatalf("bare clone: %v %s", err, out)
	}
	c := &counter{h: &cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(backend)), "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=" + os.DevNull},
	}}
	ts := httptest.NewServer(c)
	t.Cleanup(ts.Close)
	return ts, c
}

// TestOutboundPolicyGitPinsAndRefuses: the server clones over http from
// a name its policy resolves, pinned to the checked address (git.test is
// in no DNS: only the pin makes the clone work); the same name resolving
// to loopback without the loopback allowance is refused, and the git
// server never hears of it.
func TestOutboundPolicyGitPinsAndRefuses(t *testing.T) {
	r, clean, _ := repo(t)
	ts, hits := gitHTTP(t, r.Dir)
	_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
	repoURL := "http://git.test:" + port + "/repo.git"
	for _, allow := range []bool{true, false} {
		e, _ := newEnv(t, store.SQLite, envConfig{start: true, modify: func(c *server.Config) {
			c.Outbound = &httpx.OutboundPolicy{Schemes: []string{"https", "http"}, AllowLoopback: allow, Resolver: loopbackNames}
		}})
		before := hits.n.Load()
		e.createProject("app", repoURL)
		var sc struct{ ID string }
		if code := e.do("POST", "/api/v1/scans", map[string]any{"project": "app", "commit": clean}, &sc); code != http.StatusAccepted {
			t.Fatalf("POST scan: %d", code)
		}
		got := e.waitScan(sc.ID)
		switch {
		case allow && got.Status != "succeeded":
			t.Errorf("loopback allowed: scan %s: %s", got.Status, got.Error)
		case allow && hits.n.Load() == before:
			t.Error("loopback allowed: the git server got no request")
		case !allow && (got.Status != "failed" || !strings.Contains(got.Error, "loopback")):
			t.Errorf("loopback refused: scan %s %q, want failed naming the loopback address", got.Status, got.Error)
		case !allow && hits.n.Load() != before:
			t.Errorf("loopback refused: the git server got %d requests", hits.n.Load()-before)
		}
	}
}

// TestOutboundPolicyDefaultSchemes: under the default policy a project's
// repository is reached over https or ssh only; http://, git:// and
// file:// need the policy to list them.
func TestOutboundPolicyDefaultSchemes(t *testing.T) {
	e, _ := newEnv(t, store.SQLite, envConfig{modify: func(c *server.Config) { c.Outbound = nil }})
	for _, u := range []string{"http://github.com/acme/app", "git://github.com/acme/app", "file:///srv/app.git", "/srv/app.git"} {
		var got apiError
		body := map[string]any{"name": "a", "repo_url": u, "webhook_secret": webhookSecret}
		if code := e.do("POST", "/api/v1/projects", body, &got); code != http.StatusBadRequest || got.Code != "INVALID_FIELD" || !strings.HasPrefix(got.Message, "repo_url") {
			t.Errorf("repo_url %q: %d %+v, want 400 INVALID_FIELD naming repo_url", u, code, got)
		}
	}
	if code := e.do("POST", "/api/v1/projects", map[string]any{"name": "a", "repo_url": "https://github.com/acme/app", "webhook_secret": webhookSecret}, nil); code != http.StatusCreated {
		t.Errorf("https repo_url: %d, want 201", code)
	}
}

// TestOutboundPolicyClientsRefuseLoopback: under the default address
// policy, every client refuses a loopback peer: literal addresses when
// the input is checked (400 naming the field), names that resolve to
// loopback when the connection is made (the peer gets nothing).
func TestOutboundPolicyClientsRefuseLoopback(t *testing.T) {
	e, logs := newEnv(t, store.SQLite, envConfig{start: true, modify: func(c *server.Config) {
		c.Outbound = &httpx.OutboundPolicy{Schemes: []string{"https", "http", "file"}, Resolver: loopbackNames}
	}})
	r, clean, _ := repo(t)

	// Input checked on the way in.
	for _, tt := range []struct {
		path, field string
		body        map[string]any
	}{
		{"/api/v1/projects", "repo_url", map[string]any{"name": "a", "repo_url": "https://127.0.0.1/r.git", "webhook_secret": webhookSecret}},
		{"/api/v1/projects", "repo_url", map[string]any{"name": "a", "repo_url": "http://[::ffff:127.0.0.1]/r.git", "webhook_secret": webhookSecret}},
		{"/api/v1/projects", "repo_url", map[string]any{"name": "a", "repo_url": "https://2130706433/r.git", "webhook_secret": webhookSecret}},
		{"/api/v1/projects", "repo_url", map[string]any{"name": "a", "repo_url": "https://0177.0.0.1/r.git", "webhook_secret": webhookSecret}},
		{"/api/v1/projects", "repo_url", map[string]any{"name": "a", "repo_url": "http://169.254.169.254/r.git", "webhook_secret": webhookSecret}},
		{"/api/v1/projects", "repo_url", map[string]any{"name": "a", "repo_url": "ssh://git@example.com/r.git", "webhook_secret": webhookSecret}},
		{"/api/v1/projects", "forge.url", map[string]any{"name": "a", "repo_url": "https://example.com/o/r.git", "webhook_secret": webhookSecret,
			"forge": map[string]string{"url": "http://127.0.0.1:1/api/v3", "token": forgeToken}}},
		{"/api/v1/scans", "image", map[string]any{"image": "127.0.0.1:5000/app:1"}},
		{"/api/v1/scans", "image", map[string]any{"image": "[::1]:5000/app:1"}},
		{"/api/v1/scans", "image", map[string]any{"image": "localhost:5000/app:1"}},
	} {
		var got apiError
		if code := e.do("POST", tt.path, tt.body, &got); code != http.StatusBadRequest || got.Code != "INVALID_FIELD" || !strings.HasPrefix(got.Message, tt.field+":") {
			t.Errorf("POST %s %v: %d %+v, want 400 INVALID_FIELD naming %s", tt.path, tt.body, code, got, tt.field)
		}
	}

	// A registry behind a name that resolves to loopback.
	reg := &counter{h: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	regSrv := httptest.NewServer(reg)
	defer regSrv.Close()
	_, regPort, _ := net.SplitHostPort(regSrv.Listener.Addr().String())
	var got apiError
	if code := e.do("POST", "/api/v1/scans", map[string]any{"image": "registry.test:" + regPort + "/app:1"}, &got); code < 400 || code == http.StatusAccepted {
		t.Errorf("image on registry.test: %d %+v, want a refusal", code, got)
	}
	if reg.n.Load() != 0 {
		t.Errorf("the registry got %d requests", reg.n.Load())
	}
	if !strings.Contains(logs.String(), "outbound connection to registry.test (127.0.0.1) refused") {
		t.Error("the log does not say the policy refused registry.test")
	}

	// A forge behind such a name: the commit status is never posted.
	f := newForgeStandIn(t, http.StatusCreated)
	_, forgePort, _ := net.SplitHostPort(f.Listener.Addr().String())
	if code := e.do("POST", "/api/v1/projects", map[string]any{
		"name": "app", "repo_url": "file://" + r.Dir, "webhook_secret": webhookSecret,
		"forge": map[string]string{"url": "https://forge.test:" + forgePort + "/api/v3", "token": forgeToken},
	}, nil); code != http.StatusCreated {
		t.Fatalf("create project: %d", code)
	}
	var sc struct{ ID string }
	if code := e.do("POST", "/api/v1/scans", map[string]any{"project": "app", "commit": clean}, &sc); code != http.StatusAccepted {
		t.Fatalf("POST scan: %d", code)
	}
	if s := e.waitScan(sc.ID); s.Status != "succeeded" {
		t.Fatalf("scan of a file:// repository: %s %s", s.Status, s.Error)
	}
	waitFor(t, "the forge refusal in the log", func() bool {
		return strings.Contains(logs.String(), "outbound connection to forge.test (127.0.0.1) refused")
	})
	if n := len(f.requests()); n != 0 {
		t.Errorf("the forge got %d requests", n)
	}

	// An update is held to the same policy as a creation.
	for _, tt := range []struct {
		field string
		body  map[string]any
	}{
		{"repo_url", map[string]any{"repo_url": "https://127.0.0.1/r.git"}},
		{"repo_url", map[string]any{"repo_url": "http://169.254.169.254/r.git"}},
		{"forge.url", map[string]any{"forge": map[string]string{"url": "http://127.0.0.1:1/api/v3", "token": forgeToken}}},
	} {
		var got apiError
		if code := e.do("PATCH", "/api/v1/projects/app", tt.body, &got); code != http.StatusBadRequest || got.Code != "INVALID_FIELD" || !strings.HasPrefix(got.Message, tt.field+":") {
			t.Errorf("PATCH %v: %d %+v, want 400 INVALID_FIELD naming %s", tt.body, code, got, tt.field)
		}
	}
}

// TestImageResolveErrorsAreOpaque: a synchronous image resolution that
// fails answers the same, whatever the remote replied or the network
// said, so POST /api/v1/scans is no port scanner; the detail is logged.
func TestImageResolveErrorsAreOpaque(t *testing.T) {
	e, logs := newEnv(t, store.SQLite, envConfig{})
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	banner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "InternalAdmin/1.0")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `{"errors":[{"code":"UNKNOWN","message":"internal-banner-7731"}]}`)
	}))
	defer banner.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	var first apiError
	for i, ref := range []string{
		strings.TrimPrefix(reg.URL, "http://") + "/no/such:1", // a registry: manifest unknown
		strings.TrimPrefix(banner.URL, "http://") + "/app:1",  // some other service, with a banner
		closed + "/app:1", // nothing listening
	} {
		var got apiError
		code := e.do("POST", "/api/v1/scans", map[string]any{"image": ref}, &got)
		if code != http.StatusBadGateway || got.Code != "IMAGE_UNRESOLVED" {
			t.Errorf("%s: %d %+v, want 502 IMAGE_UNRESOLVED", ref, code, got)
		}
		if strings.Contains(got.Message, "internal-banner") || strings.Contains(got.Message, "refused") || strings.Contains(got.Message, "unknown") || strings.Contains(got.Message, "500") {
			t.Errorf("%s: message %q tells what the remote said", ref, got.Message)
		}
		if i == 0 {
			first = got
		} else if got != first {
			t.Errorf("%s: %+v differs from the first answer %+v", ref, got, first)
		}
	}
	if l := logs.String(); !strings.Contains(l, "internal-banner-7731") || !strings.Contains(l, "connection refused") {
		t.Error("the log lacks the details of the failures")
	}
}

// TestOutboundPolicyWebhookDeliveries: a tenant's webhook URL on a
// loopback address is refused when created; one whose name resolves to
// loopback gets failed attempts, and the receiver nothing.
func TestOutboundPolicyWebhookDeliveries(t *testing.T) {
	e, _ := newEnv(t, store.SQLite, envConfig{start: true, modify: func(c *server.Config) {
		c.Outbound = &httpx.OutboundPolicy{Schemes: []string{"https", "http"}, Resolver: loopbackNames}
		c.Jobs.PollInterval = 100 * time.Millisecond
		c.Jobs.DeliveryBackoff = func(int) time.Duration { return 200 * time.Millisecond }
		c.Jobs.SweepInterval = 300 * time.Millisecond
	}})
	rcv := &counter{h: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })}
	ts := httptest.NewUnstartedServer(rcv)
	var conns atomic.Int32 // a TLS failure would reach no handler: count connections
	ts.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	ts.StartTLS()
	defer ts.Close()
	_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())

	var tenant, product struct{ ID string }
	e.do("POST", "/api/v1/tenants", map[string]any{"name": "Acme"}, &tenant)
	e.do("POST", "/api/v1/products", map[string]any{"name": "App"}, &product)
	for _, u := range []string{"http://127.0.0.1:" + port + "/x", "https://[::1]:" + port + "/x", "https://169.254.169.254/x"} {
		var got apiError
		if code := e.do("POST", "/api/v1/tenants/"+tenant.ID+"/webhooks", map[string]any{"url": u}, &got); code != http.StatusBadRequest || !strings.HasPrefix(got.Message, "url:") {
			t.Errorf("webhook %s: %d %+v, want 400 naming url", u, code, got)
		}
	}
	var hook struct{ ID string }
	if code := e.do("POST", "/api/v1/tenants/"+tenant.ID+"/webhooks", map[string]any{"url": "https://hooks.test:" + port + "/x"}, &hook); code != http.StatusCreated {
		t.Fatalf("create webhook: %d", code)
	}
	if code := e.do("POST", "/api/v1/entitlements", map[string]any{"tenant_id": tenant.ID, "product_id": product.ID, "seats": 1,
		"expires_at": time.Now().Add(72 * time.Hour).UTC().Format(time.RFC3339)}, nil); code != http.StatusCreated {
		t.Fatalf("create entitlement: %d", code)
	}
	waitFor(t, "a failed delivery attempt", func() bool {
		var dl struct{ Deliveries []deliveryJSON }
		e.do("GET", "/api/v1/tenants/"+tenant.ID+"/webhooks/"+hook.ID+"/deliveries", nil, &dl)
		return len(dl.Deliveries) > 0 && len(dl.Deliveries[0].Attempts) > 0
	})
	if n := conns.Load(); n != 0 {
		t.Errorf("the receiver got %d connections", n)
	}
}
