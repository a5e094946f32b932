package cli_test

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/vigil-sec/vigil/internal/cli"
	"github.com/vigil-sec/vigil/internal/gittest"
	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/internal/jobs"
	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

// TestWorkerRunsScansOfAnAPIServer: an API server that runs no workers
// queues a scan on PostgreSQL; `vigil worker` on the same database and data
// directory runs it.
func TestWorkerRunsScansOfAnAPIServer(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.DSN(t, store.Postgres)
	db := storetest.OpenDSN(t, dsn)
	if err := jobs.Migrate(ctx, db, nil); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	key := make([]byte, server.SealKeySize)
	rand.Read(key)
	if err := os.WriteFile(filepath.Join(data, "seal.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	blobs, err := store.NewBlobs(filepath.Join(data, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	// Not started: it only inserts jobs.
	api, err := server.New(ctx, server.Config{DB: db, Blobs: blobs, SealKey: key, Logger: storetest.Logger(t),
		Outbound: &httpx.OutboundPolicy{Schemes: []string{"https", "file"}}})
	if err != nil {
		t.Fatal(err)
	}
	creds, _, err := api.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(api.Handler())
	t.Cleanup(ts.Close)
	cc := clientcredentials.Config{ClientID: creds.ClientID, ClientSecret: creds.ClientSecret, TokenURL: ts.URL + "/oauth2/token"}
	c := cc.Client(context.WithValue(ctx, oauth2.HTTPClient, http.DefaultClient))

	r := gittest.New(t)
	commit := r.Commit("app", map[string]string{
		"go.mod":  "module example.com/app\n\ngo 1.22\n",
		"main.go": "package main\n\nfunc main() { println(1) }\n",
	})
	if code := apiJSON(t, c, "POST", ts.URL+"/api/v1/projects", map[string]any{
		"name": "app", "repo_url": "file://" + r.Dir, "webhook_secret": "0123456789abcdef-secret",
	}, nil); code != 201 {
		t.Fatalf("create project: %d", code)
	}
	var ref struct{ ID string }
	if code := apiJSON(t, c, "POST", ts.URL+"/api/v1/scans", map[string]any{"project": "app", "commit": commit}, &ref); code != 202 {
		t.Fatalf("POST scan: %d", code)
	}

	// Without a shared data directory the worker refuses to start.
	var errOut strings.Builder
	if code := cli.Main(ctx, []string{"worker", "--database", dsn, "--data", t.TempDir()}, cli.Stdio{In: strings.NewReader(""), Out: io.Discard, Err: &errOut}); code != cli.ExitUsage || !strings.Contains(errOut.String(), "seal key") {
		t.Errorf("worker without the seal key: exit %d, %q", code, errOut.String())
	}
	errOut.Reset()
	if code := cli.Main(ctx, []string{"worker", "--database", dsn, "--data", data, "--public-url", "vigil.example.com"}, cli.Stdio{In: strings.NewReader(""), Out: io.Discard, Err: &errOut}); code != cli.ExitUsage || !strings.Contains(errOut.String(), "--public-url") {
		t.Errorf("worker with a bad --public-url: exit %d, %q", code, errOut.String())
	}

	wctx, cancel := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() {
		done <- cli.Main(wctx, []string{"worker", "--database", dsn, "--data", data, "--workers", "1", "--public-url", ts.URL, "--outbound-schemes", "https,file"},
			cli.Stdio{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard})
	}()
	defer func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("worker exited %d after cancel", code)
			}
		case <-time.After(2 * time.Minute):
			t.Errorf("worker did not stop")
		}
	}()

	deadline := time.Now().Add(5 * time.Minute)
	for {
		var s crashScan
		if code := apiJSON(t, c, "GET", ts.URL+"/api/v1/scans/"+ref.ID, nil, &s); code != 200 {
			t.Fatalf("GET scan: %d", code)
		}
		if s.Status == "succeeded" {
			break
		}
		if s.Status == "failed" || time.Now().After(deadline) {
			t.Fatalf("scan %+v, want succeeded by the worker", s)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
