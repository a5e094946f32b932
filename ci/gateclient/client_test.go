package gateclient_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/ci/gateclient"
	"github.com/vigil-sec/vigil/internal/httpx"
)

const (
	clientID     = "cli_gate"
	clientSecret = "s3cret-never-shown"
	accessToken  = "tok-1"
)

// reply is one scripted answer of the gate endpoint.
type reply struct {
	status int
	header map[string]string
	body   string
}

func decision(d string) reply {
	return reply{status: 200, body: `{"decision":"` + d + `","reasons":[{"code":"X","message":"because ` + d + `"}],"scan":"https://vigil.test/api/v1/scans/42"}`}
}

// server is a Vigil server stand-in: a token endpoint that checks the
// client's Basic credentials, and a gate endpoint that plays a script,
// repeating its last reply.
type server struct {
	*httptest.Server
	mu      sync.Mutex
	script  []reply
	queries []string
	tokens  atomic.Int32
}

func newServer(t *testing.T, script ...reply) *server {
	t.Helper()
	s := &server{script: script}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		s.tokens.Add(1)
		id, secret, ok := r.BasicAuth()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !ok || id != clientID || secret != clientSecret || r.FormValue("grant_type") != "client_credentials" {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"invalid_client","error_description":"client authentication failed"}`))
			return
		}
		if r.FormValue("scope") != gateclient.Scope {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"invalid_scope"}`))
			return
		}
		w.Write([]byte(`{"access_token":"` + accessToken + `","token_type":"Bearer","expires_in":300}`))
	})
	mux.HandleFunc("GET /api/v1/gate", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer "+accessToken {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"code":"UNAUTHORIZED","message":"missing or invalid access token"}`))
			return
		}
		s.mu.Lock()
		s.queries = append(s.queries, r.URL.RawQuery)
		rep := s.script[0]
		if len(s.script) > 1 {
			s.script = s.script[1:]
		}
		s.mu.Unlock()
		for k, v := range rep.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(rep.status)
		w.Write([]byte(rep.body))
	})
	s.Server = httptest.NewUnstartedServer(mux)
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func (s *server) asked() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.queries...)
}

// caFile writes the server's certificate as PEM and returns its path.
func (s *server) caFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// config trusts the server through a CA file and polls fast.
func (s *server) config(t *testing.T) gateclient.Config {
	return gateclient.Config{
		Server: s.URL, ClientID: clientID, ClientSecret: clientSecret,
		CACert: s.caFile(t), PollInterval: 10 * time.Millisecond, PollMax: 20 * time.Millisecond,
	}
}

func newClient(t *testing.T, cfg gateclient.Config) *gateclient.Client {
	t.Helper()
	c, err := gateclient.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

var commit = gateclient.Query{Project: "app", Commit: "1a2b3c"}

func TestWaitPendingThenPass(t *testing.T) {
	t.Parallel()
	s := newServer(t, decision(ci.Pending), decision(ci.Pending), decision(ci.Pass))
	c := newClient(t, s.config(t))

	var seen []string
	got, err := c.Wait(context.Background(), commit, time.Minute, func(a *gateclient.Answer) { seen = append(seen, a.Decision) })
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if !got.Passed() || got.Scan != "https://vigil.test/api/v1/scans/42" {
		t.Errorf("answer = %+v, want pass with its scan URL", got)
	}
	if diff := cmp.Diff([]ci.Reason{{Code: "X", Message: "because pass"}}, got.Reasons); diff != "" {
		t.Errorf("reasons (-want +got):\n%s", diff)
	}
	if string(got.Raw) != decision(ci.Pass).body {
		t.Errorf("Raw = %s, want the server's JSON as sent", got.Raw)
	}
	if diff := cmp.Diff([]string{ci.Pending, ci.Pending}, seen); diff != "" {
		t.Errorf("progress (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"commit=1a2b3c&project=app", "commit=1a2b3c&project=app", "commit=1a2b3c&project=app"}, s.asked()); diff != "" {
		t.Errorf("queries (-want +got):\n%s", diff)
	}
	if n := s.tokens.Load(); n != 1 {
		t.Errorf("token requests = %d, want 1 (the token is reused)", n)
	}
}

func TestWaitFail(t *testing.T) {
	t.Parallel()
	s := newServer(t, decision(ci.Fail))
	got, err := newClient(t, s.config(t)).Wait(context.Background(), commit, time.Minute, nil)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if got.Decision != ci.Fail || len(s.asked()) != 1 {
		t.Errorf("decision = %s after %d questions, want fail after 1", got.Decision, len(s.asked()))
	}
}

func TestWaitPendingUntilMaxWait(t *testing.T) {
	t.Parallel()
	s := newServer(t, decision(ci.Pending))
	start := time.Now()
	// Long enough for several 10-20 ms polls even when the first one
	// (a TLS handshake and a token) is slow on a loaded machine.
	const maxWait = time.Second
	got, err := newClient(t, s.config(t)).Wait(context.Background(), commit, maxWait, nil)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if got.Decision != ci.Pending {
		t.Errorf("decision = %s, want pending", got.Decision)
	}
	if elapsed < maxWait || elapsed > maxWait+10*time.Second {
		t.Errorf("waited %v, want about %v", elapsed, maxWait)
	}
	if n := len(s.asked()); n < 3 {
		t.Errorf("asked %d times, want several", n)
	}
}

func TestWaitUnknown(t *testing.T) {
	t.Parallel()
	t.Run("commit not yet pushed is asked again", func(t *testing.T) {
		t.Parallel()
		s := newServer(t, decision(ci.Unknown), decision(ci.Pending), decision(ci.Fail))
		got, err := newClient(t, s.config(t)).Wait(context.Background(), commit, time.Minute, nil)
		if err != nil || got.Decision != ci.Fail {
			t.Fatalf("Wait = %+v, %v; want fail", got, err)
		}
	})
	t.Run("image is final", func(t *testing.T) {
		t.Parallel()
		s := newServer(t, decision(ci.Unknown), decision(ci.Pass))
		got, err := newClient(t, s.config(t)).Wait(context.Background(), gateclient.Query{Image: "registry.test/app:1"}, time.Minute, nil)
		if err != nil || got.Decision != ci.Unknown {
			t.Fatalf("Wait = %+v, %v; want unknown", got, err)
		}
		if diff := cmp.Diff([]string{"image=registry.test%2Fapp%3A1"}, s.asked()); diff != "" {
			t.Errorf("queries (-want +got):\n%s", diff)
		}
	})
}

func TestWaitHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			s := newServer(t,
				reply{status: status, header: map[string]string{"Retry-After": "1"}, body: `{"code":"BUSY","message":"slow down"}`},
				decision(ci.Pass))
			start := time.Now()
			got, err := newClient(t, s.config(t)).Wait(context.Background(), commit, time.Minute, nil)
			if err != nil || !got.Passed() {
				t.Fatalf("Wait = %+v, %v; want pass", got, err)
			}
			// ±20% jitter on the server's 1s.
			if elapsed := time.Since(start); elapsed < 750*time.Millisecond {
				t.Errorf("asked again after %v, want about the 1s Retry-After", elapsed)
			}
		})
	}
}

func TestGateErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		script     reply
		cfg        func(*gateclient.Config)
		wantStatus int
		wantIn     []string
	}{
		{
			name:       "bad credentials",
			script:     decision(ci.Pass),
			cfg:        func(c *gateclient.Config) { c.ClientSecret = "wrong-" + clientSecret },
			wantStatus: http.StatusUnauthorized,
			wantIn:     []string{"check VIGIL_CLIENT_ID / VIGIL_CLIENT_SECRET", "INVALID_CLIENT"},
		},
		{
			name:       "token refused by the gate",
			script:     reply{status: 401, body: `{"code":"UNAUTHORIZED","message":"token expired"}`},
			wantStatus: http.StatusUnauthorized,
			wantIn:     []string{"UNAUTHORIZED: token expired", "check VIGIL_CLIENT_ID / VIGIL_CLIENT_SECRET"},
		},
		{
			name:       "missing scope",
			script:     reply{status: 403, body: `{"code":"FORBIDDEN","message":"scope gate:read required"}`},
			wantStatus: http.StatusForbidden,
			wantIn:     []string{"FORBIDDEN", "--scopes gate:read"},
		},
		{
			name:       "unknown project",
			script:     reply{status: 404, body: `{"code":"NOT_FOUND","message":"no project app; create it first"}`},
			wantStatus: http.StatusNotFound,
			wantIn:     []string{"answered 404 NOT_FOUND: no project app; create it first"},
		},
		{
			name:       "not JSON",
			script:     reply{status: 500, body: `<html>oops</html>`},
			wantStatus: http.StatusInternalServerError,
			wantIn:     []string{"answered 500: Internal Server Error"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, tt.script)
			cfg := s.config(t)
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			_, err := newClient(t, cfg).Wait(context.Background(), commit, time.Minute, nil)
			if err == nil {
				t.Fatal("Wait succeeded, want an error")
			}
			t.Log(err)
			var e *gateclient.Error
			if !errors.As(err, &e) || e.StatusCode != tt.wantStatus {
				t.Errorf("error %v is not a *Error with status %d", err, tt.wantStatus)
			}
			msg := err.Error()
			for _, want := range append(tt.wantIn, s.URL) {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
			if strings.Contains(msg, clientSecret) {
				t.Errorf("error %q contains the client secret", msg)
			}
		})
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	s := newServer(t, decision(ci.Pass))
	base := gateclient.Config{Server: s.URL, ClientID: clientID, ClientSecret: clientSecret}

	t.Run("untrusted", func(t *testing.T) {
		_, err := newClient(t, base).Gate(context.Background(), commit)
		if err == nil || !strings.Contains(err.Error(), "pass --ca-cert or --fingerprint") || !strings.Contains(err.Error(), s.URL) {
			t.Errorf("error = %v, want one naming the server and --ca-cert or --fingerprint", err)
		}
	})
	t.Run("CA file", func(t *testing.T) {
		cfg := base
		cfg.CACert = s.caFile(t)
		if a, err := newClient(t, cfg).Gate(context.Background(), commit); err != nil || !a.Passed() {
			t.Errorf("Gate = %+v, %v; want pass", a, err)
		}
	})
	fp := httpx.Fingerprint(s.Certificate().Raw)
	for name, pin := range map[string]string{
		"fingerprint as vigil serve prints it": fp,
		"fingerprint lower-case, no colons":    strings.ToLower(strings.ReplaceAll(fp, ":", "")),
	} {
		t.Run(name, func(t *testing.T) {
			cfg := base
			cfg.Fingerprint = pin
			if a, err := newClient(t, cfg).Gate(context.Background(), commit); err != nil || !a.Passed() {
				t.Errorf("Gate = %+v, %v; want pass", a, err)
			}
		})
	}
	t.Run("wrong fingerprint", func(t *testing.T) {
		cfg := base
		cfg.Fingerprint = strings.Repeat("AB:", 31) + "AB"
		before := s.tokens.Load()
		_, err := newClient(t, cfg).Gate(context.Background(), commit)
		var fe *gateclient.FingerprintError
		if !errors.As(err, &fe) || fe.Got != fp {
			t.Fatalf("error = %v, want a *FingerprintError naming %s", err, fp)
		}
		if s.tokens.Load() != before {
			t.Error("the credentials were sent to a server whose certificate does not match the pin")
		}
	})
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ok := gateclient.Config{Server: "https://vigil.test", ClientID: "a", ClientSecret: "b"}
	tests := map[string]func(*gateclient.Config){
		"no server":          func(c *gateclient.Config) { c.Server = "" },
		"not a URL":          func(c *gateclient.Config) { c.Server = "vigil.test:8443" },
		"no secret":          func(c *gateclient.Config) { c.ClientSecret = "" },
		"CA and fingerprint": func(c *gateclient.Config) { c.CACert, c.Fingerprint = "ca.pem", strings.Repeat("00", 32) },
		"short fingerprint":  func(c *gateclient.Config) { c.Fingerprint = "AB:CD" },
	}
	if err := ok.Validate(); err != nil {
		t.Fatalf("Validate(%+v) = %v", ok, err)
	}
	for name, mutate := range tests {
		cfg := ok
		mutate(&cfg)
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: Validate succeeded", name)
		}
	}
}

func TestQueryValidation(t *testing.T) {
	t.Parallel()
	s := newServer(t, decision(ci.Pass))
	c := newClient(t, s.config(t))
	for _, q := range []gateclient.Query{{}, {Project: "app"}, {Project: "app", Commit: "1", Image: "x"}} {
		if _, err := c.Gate(context.Background(), q); err == nil {
			t.Errorf("Gate(%+v) succeeded", q)
		}
	}
	if len(s.asked()) != 0 {
		t.Error("an invalid query reached the server")
	}
}

func TestAnswerJSON(t *testing.T) {
	t.Parallel()
	var a gateclient.Answer
	if err := json.Unmarshal([]byte(decision(ci.Fail).body), &a); err != nil {
		t.Fatal(err)
	}
	if a.Decision != ci.Fail || a.Reasons[0].Code != "X" {
		t.Errorf("decoded %+v", a)
	}
}
