package cli

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/scanner"
)

const (
	gateTestID     = "cli_gate"
	gateTestSecret = "gate-secret-not-for-output"
)

// gateServer is a Vigil server stand-in for `vigil gate`: a token endpoint
// checking Basic credentials, and a gate endpoint answering from a script
// (repeating its last entry).
type gateServer struct {
	*httptest.Server
	mu     sync.Mutex
	script []gateReply
}

type gateReply struct {
	status int
	body   string
}

func gateJSON(decision string) gateReply {
	return gateReply{200, fmt.Sprintf(`{"decision":%q,"reasons":[{"code":"FINDING","message":"G404 at main.go:12","rule_id":"G404"}],"scan":"https://vigil.test/api/v1/scans/7"}`+"\n", decision)}
}

func newGateServer(t *testing.T, script ...gateReply) *gateServer {
	t.Helper()
	s := &gateServer{script: script}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if id, secret, ok := r.BasicAuth(); !ok || id != gateTestID || secret != gateTestSecret {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"invalid_client"}`)
			return
		}
		io.WriteString(w, `{"access_token":"t","token_type":"Bearer","expires_in":300}`)
	})
	mux.HandleFunc("GET /api/v1/gate", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		s.mu.Lock()
		rep := s.script[0]
		if len(s.script) > 1 {
			s.script = s.script[1:]
		}
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rep.status)
		io.WriteString(w, rep.body)
	})
	s.Server = httptest.NewUnstartedServer(mux)
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func (s *gateServer) caFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// runGateCmd runs `vigil gate args...` as Main does, with the gate command
// added to the root when Main does not know it yet.
func runGateCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	stdio := Stdio{In: strings.NewReader(""), Out: &out, Err: &errb}
	root := newRoot(stdio)
	if c, _, err := root.Find([]string{"gate"}); err != nil || c == root {
		gate := newGateCmd(stdio)
		gate.Args = wrapArgs(gate.Args)
		root.AddCommand(gate)
	}
	root.SetArgs(append([]string{"gate"}, args...))
	root.SetOut(&out)
	root.SetErr(&errb)
	code := ExitPass
	if err := root.ExecuteContext(context.Background()); err != nil {
		code = exitCode(err)
		if code != ExitGateFailed {
			fmt.Fprintf(&errb, "vigil: %s\n", scanner.UsageMessage(err))
		}
	}
	t.Logf("vigil gate %s → %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out.String(), errb.String())
	return code, out.String(), errb.String()
}

func setGateCredentials(t *testing.T) {
	t.Setenv(envClientID, gateTestID)
	t.Setenv(envClientSecret, gateTestSecret)
}

func TestGateExitCodes(t *testing.T) {
	setGateCredentials(t)
	tests := []struct {
		name    string
		script  []gateReply
		args    []string
		want    int
		wantOut string
		wantErr string
	}{
		{name: "pass", script: []gateReply{gateJSON("pass")}, want: ExitPass, wantOut: "Gate: pass for project app at 1a2b3c"},
		{name: "pending then pass", script: []gateReply{gateJSON("pending"), gateJSON("pass")}, want: ExitPass, wantOut: "Gate: pass"},
		{name: "fail", script: []gateReply{gateJSON("fail")}, want: ExitGateFailed, wantOut: "  - FINDING: G404 at main.go:12"},
		{name: "pending when the wait runs out", script: []gateReply{gateJSON("pending")}, args: []string{"--wait", "300ms"}, want: ExitGateFailed, wantOut: "did not finish within --wait 300ms"},
		{name: "unknown image", script: []gateReply{gateJSON("unknown")}, args: []string{"--image", "registry.test/app:1"}, want: ExitGateFailed, wantOut: "Gate: unknown for image registry.test/app:1"},
		{name: "server error", script: []gateReply{{500, `{"code":"INTERNAL","message":"try again later"}`}}, want: ExitScanFailed, wantErr: "answered 500 INTERNAL: try again later"},
		{name: "unknown project", script: []gateReply{{404, `{"code":"NOT_FOUND","message":"no project app"}`}}, want: ExitUsage, wantErr: "NOT_FOUND"},
		{name: "unresolvable commit", script: []gateReply{{400, `{"code":"INVALID_FIELD","message":"commit 1a2b3c is not a full SHA and no scanned commit of app starts with it"}`}}, want: ExitUsage, wantErr: "no scanned commit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newGateServer(t, tt.script...)
			args := []string{"--server", s.URL, "--ca-cert", s.caFile(t)}
			if !strings.Contains(strings.Join(tt.args, " "), "--image") {
				args = append(args, "--project", "app", "--commit", "1a2b3c")
			}
			code, out, errOut := runGateCmd(t, append(args, tt.args...)...)
			if code != tt.want {
				t.Errorf("exit code = %d, want %d", code, tt.want)
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("stdout %q does not contain %q", out, tt.wantOut)
			}
			if !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("stderr %q does not contain %q", errOut, tt.wantErr)
			}
		})
	}
}

func TestGateJSONIsTheServersJSON(t *testing.T) {
	setGateCredentials(t)
	for _, d := range []string{"pass", "fail"} {
		s := newGateServer(t, gateJSON(d))
		fp := httpx.Fingerprint(s.Certificate().Raw)
		code, out, _ := runGateCmd(t, "--server", s.URL, "--fingerprint", fp, "--project", "app", "--commit", "1a2b3c", "--json")
		if want := map[string]int{"pass": ExitPass, "fail": ExitGateFailed}[d]; code != want {
			t.Errorf("%s: exit code = %d, want %d", d, code, want)
		}
		if out != gateJSON(d).body {
			t.Errorf("%s: stdout = %q, want the server's JSON %q", d, out, gateJSON(d).body)
		}
	}
}

func TestGateUsage(t *testing.T) {
	setGateCredentials(t)
	s := newGateServer(t, gateJSON("pass"))
	srv := []string{"--server", s.URL}
	tests := map[string][]string{
		"no server":                {"--project", "app", "--commit", "1"},
		"neither commit nor image": srv,
		"project without commit":   append(srv, "--project", "app"),
		"commit and image":         append(srv, "--project", "app", "--commit", "1", "--image", "x:1"),
		"CA and fingerprint":       append(srv, "--image", "x:1", "--ca-cert", "a.pem", "--fingerprint", "AB"),
		"bad fingerprint":          append(srv, "--image", "x:1", "--fingerprint", "AB:CD"),
		"unknown flag":             append(srv, "--image", "x:1", "--bogus"),
		"argument":                 append(srv, "--image", "x:1", "extra"),
		"bad wait":                 append(srv, "--image", "x:1", "--wait", "soon"),
		"server not a URL":         {"--server", "vigil.test", "--image", "x:1"},
	}
	for name, args := range tests {
		t.Run(name, func(t *testing.T) {
			if code, _, _ := runGateCmd(t, args...); code != ExitUsage {
				t.Errorf("exit code = %d, want %d", code, ExitUsage)
			}
		})
	}
	t.Run("missing credentials", func(t *testing.T) {
		t.Setenv(envClientSecret, "")
		code, _, errOut := runGateCmd(t, "--server", s.URL, "--image", "x:1")
		if code != ExitUsage || !strings.Contains(errOut, "VIGIL_CLIENT_ID and VIGIL_CLIENT_SECRET") {
			t.Errorf("exit code %d, stderr %q; want %d naming both variables", code, errOut, ExitUsage)
		}
	})
}

func TestGateServerTrouble(t *testing.T) {
	setGateCredentials(t)
	s := newGateServer(t, gateJSON("pass"))
	query := []string{"--project", "app", "--commit", "1a2b3c"}

	t.Run("bad credentials", func(t *testing.T) {
		t.Setenv(envClientSecret, "wrong-"+gateTestSecret)
		code, out, errOut := runGateCmd(t, append([]string{"--server", s.URL, "--ca-cert", s.caFile(t)}, query...)...)
		if code != ExitScanFailed || !strings.Contains(errOut, "check VIGIL_CLIENT_ID / VIGIL_CLIENT_SECRET") {
			t.Errorf("exit code %d, stderr %q; want %d and advice on the credentials", code, errOut, ExitScanFailed)
		}
		if strings.Contains(out+errOut, gateTestSecret) {
			t.Error("the output shows the client secret")
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		code, _, errOut := runGateCmd(t, append([]string{"--server", s.URL}, query...)...)
		if code != ExitScanFailed || !strings.Contains(errOut, "--ca-cert or --fingerprint") {
			t.Errorf("exit code %d, stderr %q; want %d and advice on trust", code, errOut, ExitScanFailed)
		}
	})
	t.Run("wrong fingerprint", func(t *testing.T) {
		code, _, errOut := runGateCmd(t, append([]string{"--server", s.URL, "--fingerprint", strings.Repeat("00", 32)}, query...)...)
		if code != ExitScanFailed || !strings.Contains(errOut, "does not match the pinned") {
			t.Errorf("exit code %d, stderr %q; want %d and a fingerprint mismatch", code, errOut, ExitScanFailed)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		url := dead.URL
		dead.Close()
		code, _, errOut := runGateCmd(t, append([]string{"--server", url}, query...)...)
		if code != ExitScanFailed || !strings.Contains(errOut, "cannot reach vigil server "+url) {
			t.Errorf("exit code %d, stderr %q; want %d naming the server", code, errOut, ExitScanFailed)
		}
	})
}
