package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/vigil-sec/vigil/internal/gittest"
	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/internal/store"
)

// vigilProc is a `vigil serve` process of the real binary.
type vigilProc struct {
	cmd    *exec.Cmd
	base   string
	id     string // admin client, when this start printed it
	secret string
	stderr *syncBuffer
}

// syncBuffer is a bytes.Buffer safe to read while a process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startVigil(t *testing.T, bin, data string, env ...string) *vigilProc {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--http", "--addr", "127.0.0.1:0", "--data", data, "--workers", "1", "--outbound-schemes", "https,file")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &vigilProc{cmd: cmd, stderr: &syncBuffer{}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "client_id:"); ok {
			p.id = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "client_secret:"); ok {
			p.secret = strings.TrimSpace(v)
		}
		if u, ok := strings.CutPrefix(line, "serving on "); ok {
			p.base = u
			go io.Copy(io.Discard, out)
			return p
		}
	}
	cmd.Wait()
	t.Fatalf("vigil serve ended before serving:\n%s", p.stderr)
	return nil
}

func apiJSON(t *testing.T, c *http.Client, method, url string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s → %d: %q: %v", method, url, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

type crashScan struct {
	ID, Status, Error string
	Attempts          int
	Findings          []json.RawMessage
}

// TestServeSIGKILLDuringScan kills `vigil serve` with SIGKILL while a scan
// runs, starts it again on the same data directory, and checks that the
// scan then runs to succeeded, once: one scan row, one finished job, one
// result.
func TestServeSIGKILLDuringScan(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the vigil binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "vigil")
	build := exec.Command("go", "build", "-o", bin, "./cmd/vigil")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	r := gittest.New(t)
	r.Commit("app", map[string]string{
		"go.mod":     "module example.com/app\n\ngo 1.22\n",
		"main.go":    "package main\n\nimport \"math/rand\"\n\nfunc main() { println(rand.Intn(3)) }\n",
		"lib/lib.go": "package lib\n\nfunc Add(a, b int) int { return a + b }\n",
	})
	commit := strings.TrimSpace(r.Git("rev-parse", "HEAD"))
	data := filepath.Join(dir, "data")
	// Each attempt waits 8s once running: time to kill it mid-scan.
	delay := server.TestScanDelayEnv + "=8s"

	p1 := startVigil(t, bin, data, delay)
	if p1.id == "" || p1.secret == "" {
		t.Fatal("the first start printed no admin client")
	}
	client := func(base string) *http.Client {
		cc := clientcredentials.Config{ClientID: p1.id, ClientSecret: p1.secret, TokenURL: base + "/oauth2/token"}
		return cc.Client(context.WithValue(context.Background(), oauth2.HTTPClient, http.DefaultClient))
	}
	c1 := client(p1.base)
	if code := apiJSON(t, c1, "POST", p1.base+"/api/v1/projects", map[string]any{
		"name": "app", "repo_url": "file://" + r.Dir, "default_branch": "main", "webhook_secret": "0123456789abcdef-secret",
	}, nil); code != 201 {
		t.Fatalf("create project: %d", code)
	}
	var ref struct{ ID string }
	if code := apiJSON(t, c1, "POST", p1.base+"/api/v1/scans", map[string]any{"project": "app", "commit": commit}, &ref); code != 202 {
		t.Fatalf("POST scan: %d", code)
	}
	poll := func(c *http.Client, base string, until func(crashScan) bool) crashScan {
		t.Helper()
		deadline := time.Now().Add(5 * time.Minute)
		for {
			var s crashScan
			if code := apiJSON(t, c, "GET", base+"/api/v1/scans/"+ref.ID, nil, &s); code != 200 {
				t.Fatalf("GET scan: %d", code)
			}
			if until(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("scan still %s after 5 minutes", s.Status)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	s := poll(c1, p1.base, func(s crashScan) bool { return s.Status != "queued" })
	if s.Status != "running" || s.Attempts != 1 {
		t.Fatalf("before the kill: %+v, want running, attempt 1", s)
	}
	if err := p1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p1.cmd.Wait()

	p2 := startVigil(t, bin, data, delay)
	if p2.id != "" {
		t.Errorf("the second start made another admin client")
	}
	c2 := client(p2.base)
	s = poll(c2, p2.base, func(s crashScan) bool { return s.Status == "succeeded" || s.Status == "failed" })
	if s.Status != "succeeded" || s.Attempts != 2 || len(s.Findings) == 0 {
		t.Fatalf("after the restart: %+v, want succeeded after 2 attempts, with findings\n%s", s, p2.stderr)
	}
	var l struct{ Scans []crashScan }
	if code := apiJSON(t, c2, "GET", p2.base+"/api/v1/scans?project=app", nil, &l); code != 200 || len(l.Scans) != 1 || l.Scans[0].ID != ref.ID {
		t.Fatalf("scans of the project: %d %+v, want just %s", code, l.Scans, ref.ID)
	}
	if !strings.Contains(p2.stderr.String(), "reclaimed jobs") {
		t.Errorf("the restart did not log the reclaim:\n%s", p2.stderr)
	}
	if err := p2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p2.cmd.Wait(); err != nil {
		t.Errorf("vigil serve after SIGTERM: %v\n%s", err, p2.stderr)
	}

	// In the database: one scan, one job for it, completed; the scan's
	// result written once.
	db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(data, "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var scans, jobs, completed int
	q := db.SQL().QueryRow("SELECT count(*) FROM scans")
	if err := q.Scan(&scans); err != nil {
		t.Fatal(err)
	}
	q = db.SQL().QueryRow("SELECT count(*), count(*) FILTER (WHERE state = 'completed') FROM river_job WHERE kind = 'scan'")
	if err := q.Scan(&jobs, &completed); err != nil {
		t.Fatal(err)
	}
	if scans != 1 || jobs != 1 || completed != 1 {
		t.Errorf("%d scans, %d scan jobs (%d completed); want 1, 1, 1", scans, jobs, completed)
	}
	final, err := db.GetScan(context.Background(), ref.ID)
	if err != nil || final.ResultKey == "" || final.Attempts != 2 {
		t.Errorf("stored scan %+v, %v", final, err)
	}
}
