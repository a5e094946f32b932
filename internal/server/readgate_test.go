package server_test

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/vigil-sec/vigil/internal/cli"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

// storeRows counts the scans and the queued jobs: what a read must not
// change.
func storeRows(t *testing.T, db *store.DB) (scans, jobs int) {
	t.Helper()
	ctx := context.Background()
	if err := db.SQL().QueryRowContext(ctx, "SELECT COUNT(*) FROM scans").Scan(&scans); err != nil {
		t.Fatal(err)
	}
	if err := db.SQL().QueryRowContext(ctx, "SELECT COUNT(*) FROM river_job").Scan(&jobs); err != nil {
		t.Fatal(err)
	}
	return scans, jobs
}

// A gate:read client reading the gate starts no work: an unscanned commit
// or image is unknown and stays unscanned; a queued scan reads pending.
func TestReadingTheGateStartsNoScan(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		// Workers are not started: a queued scan stays queued.
		e, _ := newEnv(t, dialect, envConfig{})
		r, clean, weak := repo(t)
		e.createProject("app", "file://"+r.Dir)
		id, secret, err := e.srv.OAuth().CreateClient(context.Background(), "gate", []string{"gate:read"})
		if err != nil {
			t.Fatal(err)
		}
		cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: e.ts.URL + "/oauth2/token"}
		reader := cc.Client(context.WithValue(context.Background(), oauth2.HTTPClient, e.ts.Client()))

		reg := httptest.NewServer(registry.New())
		defer reg.Close()
		tag := strings.TrimPrefix(reg.URL, "http://") + "/team/app:v1"
		digest := pushRandom(t, tag, 3)

		scans, jobs := storeRows(t, e.db)
		for _, q := range []string{
			"project=app&commit=" + clean,
			"project=app&commit=" + strings.ToUpper(weak),
			"image=" + tag,
			"image=" + digest,
			"image=" + strings.TrimPrefix(reg.URL, "http://") + "/team/app@" + digest,
		} {
			var g gateJSON
			if code := e.doWith(reader, "GET", "/api/v1/gate?"+q, nil, &g); code != http.StatusOK || g.Decision != "unknown" || !hasCode(g, "NOT_SCANNED", "") {
				t.Errorf("gate?%s: %d %+v, want unknown NOT_SCANNED", q, code, g)
			}
			if s, j := storeRows(t, e.db); s != scans || j != jobs {
				t.Errorf("gate?%s changed the store: %d scans and %d jobs, was %d and %d", q, s, j, scans, jobs)
			}
		}
		if code := e.doWith(reader, "GET", "/api/v1/gate?project=nope&commit="+clean, nil, nil); code != http.StatusNotFound {
			t.Errorf("gate of an unknown project: %d, want 404", code)
		}
		// A short SHA names a scanned commit, or is bad input: the server
		// knows only the commits it scanned. Names that are not SHAs too.
		for _, c := range []string{clean[:7], "main", "HEAD~1", clean[:6]} {
			var apiErr struct{ Code, Message string }
			if code := e.doWith(reader, "GET", "/api/v1/gate?project=app&commit="+url.QueryEscape(c), nil, &apiErr); code != http.StatusBadRequest || !strings.Contains(apiErr.Message, "commit") {
				t.Errorf("gate of commit %q: %d %+v, want 400 about the commit", c, code, apiErr)
			}
		}
		if code := e.doWith(reader, "POST", "/api/v1/scans", map[string]any{"project": "app", "commit": clean}, nil); code != http.StatusForbidden {
			t.Errorf("gate:read posting a scan: %d, want 403", code)
		}

		// Queued by a writer: pending, with a link to the scan.
		if code := e.do("POST", "/api/v1/scans", map[string]any{"project": "app", "commit": clean}, nil); code != http.StatusAccepted {
			t.Fatalf("POST scan: %d", code)
		}
		var g gateJSON
		if code := e.doWith(reader, "GET", "/api/v1/gate?project=app&commit="+clean, nil, &g); code != http.StatusOK || g.Decision != "pending" || g.Scan == "" {
			t.Errorf("gate of a queued scan: %d %+v, want pending", code, g)
		}
		var short gateJSON
		if code := e.doWith(reader, "GET", "/api/v1/gate?project=app&commit="+clean[:7], nil, &short); code != http.StatusOK || short.Decision != "pending" || short.Scan != g.Scan {
			t.Errorf("gate of the queued commit by its short SHA: %d %+v, want pending for scan %s", code, short, g.Scan)
		}
	})
}

// vigilGate runs `vigil gate` in process against the test server with
// the client's credentials.
func (e *env) vigilGate(id, secret string, args ...string) (int, string) {
	e.t.Helper()
	e.t.Setenv("VIGIL_CLIENT_ID", id)
	e.t.Setenv("VIGIL_CLIENT_SECRET", secret)
	ca := filepath.Join(e.t.TempDir(), "cert.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.ts.Certificate().Raw}), 0o644); err != nil {
		e.t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), append([]string{"gate", "--server", e.ts.URL, "--ca-cert", ca}, args...),
		cli.Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
	e.t.Logf("vigil gate %s → %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
	return code, out.String() + errb.String()
}

// `vigil gate` reads; `vigil gate --scan` asks for the scan first, with
// a client that may write scans.
func TestGateCommandScansOnlyWhenAsked(t *testing.T) {
	e := setup(t, store.SQLite) // not per database: t.Setenv, and the client is what is tested
	r, clean, _ := repo(t)
	e.createProject("app", "file://"+r.Dir)
	pid := mustProject(t, e.db, "app")
	reader, readerSecret, err := e.srv.OAuth().CreateClient(context.Background(), "gate", []string{"gate:read"})
	if err != nil {
		t.Fatal(err)
	}
	writer, writerSecret, err := e.srv.OAuth().CreateClient(context.Background(), "ci", []string{"gate:read", "scans:write"})
	if err != nil {
		t.Fatal(err)
	}

	if code, out := e.vigilGate(reader, readerSecret, "--project", "app", "--commit", clean, "--wait", "0"); code != 1 || !strings.Contains(out, "unknown") {
		t.Errorf("vigil gate of an unscanned commit: exit %d, want 1 (unknown)", code)
	}
	if code, out := e.vigilGate(reader, readerSecret, "--scan", "--project", "app", "--commit", clean, "--wait", "0"); code != 3 || !strings.Contains(out, "scans:write") {
		t.Errorf("vigil gate --scan without scans:write: exit %d, want 3 naming the scope", code)
	}
	if _, err := e.db.FindCommitScan(context.Background(), pid, clean); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a scan exists after reads only: %v", err)
	}
	code, out := e.vigilGate(writer, writerSecret, "--scan", "--project", "app", "--commit", clean, "--wait", "5m")
	if code != 0 || !strings.Contains(out, "pass") {
		t.Errorf("vigil gate --scan: exit %d, want 0 (pass)", code)
	}
	// The server has no public URL: its relative link is shown under
	// the server the client asked.
	if !strings.Contains(out, "Scan: "+e.ts.URL+"/api/v1/scans/") {
		t.Errorf("vigil gate does not show the scan's link under %s", e.ts.URL)
	}
}
