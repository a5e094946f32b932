// Command gateload measures the latency of the deploy gate of a running
// `vigil serve`: it takes an OAuth2 client_credentials token, then runs
// -clients concurrent clients for -duration, each sending GET
// /api/v1/gate as soon as its previous answer arrived (a closed loop),
// over a mix of project/commit and image queries. It prints requests per
// second, p50, p90, p99 and max latency, and errors.
//
// With -seed it first makes the data it queries, through the API and real
// scans: a git repository of -commits commits (some with findings, on the
// default branch and on a feature branch, so that change gates read a
// baseline), a project for it, a waiver, and a small random image pushed
// to a registry on loopback (go-containerregistry's pkg/registry).
// Without -seed, name the queries with -project and -commit, and -image.
//
//	go run ./bench/gateload -server http://127.0.0.1:8080 -seed -clients 200 -duration 30s
//
// The credentials come from -client-id/-client-secret or from
// VIGIL_CLIENT_ID and VIGIL_CLIENT_SECRET; the client needs the admin
// scope with -seed, gate:read without.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

type config struct {
	server, clientID, clientSecret string
	clients                        int
	duration, warmup               time.Duration
	insecure, seed                 bool
	commits                        int
	project, label                 string
	commitList, imageList          multiFlag
	jsonOut                        bool
	rates                          string
	rate                           float64
	serverPID                      int
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	var c config
	flag.StringVar(&c.server, "server", "", "base URL of the Vigil server (required)")
	flag.StringVar(&c.clientID, "client-id", os.Getenv("VIGIL_CLIENT_ID"), "OAuth client ID (default $VIGIL_CLIENT_ID)")
	flag.StringVar(&c.clientSecret, "client-secret", os.Getenv("VIGIL_CLIENT_SECRET"), "OAuth client secret (default $VIGIL_CLIENT_SECRET)")
	flag.IntVar(&c.clients, "clients", 200, "concurrent clients")
	flag.DurationVar(&c.duration, "duration", 30*time.Second, "how long to measure")
	flag.DurationVar(&c.warmup, "warmup", 2*time.Second, "load before measuring (not counted)")
	flag.BoolVar(&c.insecure, "insecure", false, "do not verify the server's TLS certificate (a self-signed one)")
	flag.BoolVar(&c.seed, "seed", false, "make a project, commits, scans, a waiver and an image scan to query first")
	flag.IntVar(&c.commits, "commits", 6, "with -seed: how many commits to make and scan")
	flag.StringVar(&c.project, "project", "", "without -seed: the project of the -commit queries")
	flag.Var(&c.commitList, "commit", "without -seed: a commit to query (repeatable)")
	flag.Var(&c.imageList, "image", "without -seed: an image (digest or reference) to query (repeatable)")
	flag.StringVar(&c.label, "label", "gate", "label of the result line")
	flag.BoolVar(&c.jsonOut, "json", false, "print the result as JSON")
	flag.IntVar(&c.serverPID, "server-pid", 0, "process ID of the server, on this Linux host: report the server's CPU time per request")
	flag.StringVar(&c.rates, "rate", "0", "total requests per second, spread evenly over the clients (an open loop: latency counts from when a request was due); 0 sends each request as soon as the previous answer arrived (a closed loop). A comma-separated list runs one measurement per rate")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "gateload:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	switch {
	case c.server == "":
		return errors.New("-server is required")
	case c.clientID == "" || c.clientSecret == "":
		return errors.New("give -client-id and -client-secret, or set VIGIL_CLIENT_ID and VIGIL_CLIENT_SECRET")
	case c.clients < 1 || c.duration <= 0:
		return errors.New("-clients and -duration must be positive")
	}
	c.server = strings.TrimRight(c.server, "/")
	base := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        c.clients + 16,
		MaxIdleConnsPerHost: c.clients + 16,
		IdleConnTimeout:     time.Minute,
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: c.insecure}, // #nosec G402 -- opt-in, for a self-signed bench server
	}
	cc := clientcredentials.Config{ClientID: c.clientID, ClientSecret: c.clientSecret, TokenURL: c.server + "/oauth2/token"}
	octx := context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: base, Timeout: 30 * time.Second})
	// One token source for every client: one token, refreshed when it
	// nears expiry.
	ts := oauth2.ReuseTokenSource(nil, cc.TokenSource(octx))
	if _, err := ts.Token(); err != nil {
		return fmt.Errorf("get a token: %w", err)
	}
	api := &http.Client{Transport: &oauth2.Transport{Source: ts, Base: base}, Timeout: 30 * time.Second}

	var queries []string
	if c.seed {
		var err error
		if queries, err = seed(ctx, api, c); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	} else {
		for _, commit := range c.commitList {
			queries = append(queries, "project="+url.QueryEscape(c.project)+"&commit="+url.QueryEscape(commit))
		}
		for _, img := range c.imageList {
			queries = append(queries, "image="+url.QueryEscape(img))
		}
	}
	if len(queries) == 0 {
		return errors.New("nothing to query: give -seed, or -project with -commit, or -image")
	}
	decisions := map[string]string{}
	for _, q := range queries {
		var g struct{ Decision string }
		if code, err := call(ctx, api, "GET", c.server+"/api/v1/gate?"+q, nil, &g); err != nil || code != 200 {
			return fmt.Errorf("gate %s: %d %v", q, code, err)
		}
		decisions[q] = g.Decision
	}
	fmt.Fprintf(os.Stderr, "gateload: %d queries: %s\n", len(queries), summarizeDecisions(decisions))

	for _, r := range strings.Split(c.rates, ",") {
		if _, err := fmt.Sscan(strings.TrimSpace(r), &c.rate); err != nil || c.rate < 0 {
			return fmt.Errorf("-rate %q: want requests per second, 0 for a closed loop", r)
		}
		if err := measure(ctx, api, c, queries, decisions); err != nil {
			return err
		}
	}
	return nil
}

func measure(ctx context.Context, api *http.Client, c config, queries []string, decisions map[string]string) error {
	res := load(ctx, api, c, queries, decisions)
	if c.jsonOut {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	mode := "closed loop"
	if c.rate > 0 {
		mode = fmt.Sprintf("%.0f req/s offered", c.rate)
	}
	cpu := ""
	if res.ServerCPU > 0 {
		cpu = fmt.Sprintf("  CPU/req: server %.0f µs, gateload %.0f µs", res.ServerCPU, res.ClientCPU)
	}
	fmt.Printf("  %-10s %4d clients, %-18s %7d req %6.0f req/s  p50 %6.2f ms  p90 %7.2f ms  p99 %7.2f ms  max %7.2f ms  errors %d%s\n",
		c.label, res.Clients, mode, res.Requests, res.RPS, res.P50, res.P90, res.P99, res.Max, res.Errors, cpu)
	return nil
}

// result is what a load run measured; latencies in milliseconds.
type result struct {
	Label    string  `json:"label"`
	Rate     float64 `json:"offered_rps,omitempty"` // 0: a closed loop
	Clients  int     `json:"clients"`
	Seconds  float64 `json:"seconds"`
	Requests int     `json:"requests"`
	RPS      float64 `json:"rps"`
	P50      float64 `json:"p50_ms"`
	P90      float64 `json:"p90_ms"`
	P99      float64 `json:"p99_ms"`
	Max      float64 `json:"max_ms"`
	Errors   int64   `json:"errors"`
	// ServerCPU is the server's CPU time (user and system) per request
	// during the measurement, in microseconds; 0 if not measured.
	ServerCPU float64 `json:"server_cpu_us,omitempty"`
	// ClientCPU is gateload's own CPU time per request, in microseconds:
	// on one host, the load generator competes with the server.
	ClientCPU float64 `json:"client_cpu_us,omitempty"`
}

// load runs the clients: a warm-up, then the measured period. A request
// counts as an error on a transport error, a status other than 200, or a
// decision other than the one the query had before the run.
//
// With -rate each client sends every clients/rate seconds, client i
// offset by i/rate, and a request's latency counts from when it was due,
// so that a slow answer that delays the next request is not hidden
// ("coordinated omission").
func load(ctx context.Context, api *http.Client, c config, queries []string, want map[string]string) result {
	var (
		measuring atomic.Bool
		errs      atomic.Int64
		wg        sync.WaitGroup
		lat       = make([][]time.Duration, c.clients)
	)
	ctx, cancel := context.WithCancel(ctx)
	start := make(chan struct{})
	var interval time.Duration
	if c.rate > 0 {
		interval = time.Duration(float64(c.clients) / c.rate * float64(time.Second))
	}
	begin := time.Now().Add(100 * time.Millisecond)
	for i := range c.clients {
		wg.Go(func() {
			<-start
			samples := make([]time.Duration, 0, 4096)
			due := begin.Add(time.Duration(float64(i) / max(c.rate, 1) * float64(time.Second)))
			for n := i; ctx.Err() == nil; n++ {
				q := queries[n%len(queries)]
				t0 := time.Now()
				if interval > 0 {
					if wait := time.Until(due); wait > 0 {
						select {
						case <-time.After(wait):
						case <-ctx.Done():
						}
						if ctx.Err() != nil {
							break
						}
					}
					t0 = due
					due = due.Add(interval)
				}
				var g struct{ Decision string }
				code, err := call(ctx, api, "GET", c.server+"/api/v1/gate?"+q, nil, &g)
				d := time.Since(t0)
				if ctx.Err() != nil {
					break
				}
				if !measuring.Load() {
					continue
				}
				if err != nil || code != 200 || g.Decision != want[q] {
					errs.Add(1)
					if errs.Load() <= 5 {
						fmt.Fprintf(os.Stderr, "gateload: %s: %d %v (decision %q, want %q)\n", q, code, err, g.Decision, want[q])
					}
					continue
				}
				samples = append(samples, d)
			}
			lat[i] = samples
		})
	}
	close(start)
	time.Sleep(c.warmup)
	measuring.Store(true)
	cpu0, self0 := processCPU(c.serverPID), processCPU(os.Getpid())
	t0 := time.Now()
	select {
	case <-time.After(c.duration):
	case <-ctx.Done():
	}
	measuring.Store(false)
	elapsed := time.Since(t0)
	cpu1, self1 := processCPU(c.serverPID), processCPU(os.Getpid())
	cancel()
	wg.Wait()

	var all []time.Duration
	for _, s := range lat {
		all = append(all, s...)
	}
	slices.Sort(all)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return ms(all[min(len(all)-1, int(p*float64(len(all))))])
	}
	r := result{Label: c.label, Rate: c.rate, Clients: c.clients, Seconds: elapsed.Seconds(), Requests: len(all), Errors: errs.Load(),
		RPS: float64(len(all)) / elapsed.Seconds(), P50: pct(0.50), P90: pct(0.90), P99: pct(0.99)}
	if len(all) > 0 {
		r.Max = ms(all[len(all)-1])
		n := float64(len(all) + int(r.Errors))
		if cpu0 >= 0 && cpu1 >= 0 {
			r.ServerCPU = float64(cpu1-cpu0) / float64(time.Microsecond) / n
		}
		if self0 >= 0 && self1 >= 0 {
			r.ClientCPU = float64(self1-self0) / float64(time.Microsecond) / n
		}
	}
	return r
}

func summarizeDecisions(m map[string]string) string {
	count := map[string]int{}
	for _, d := range m {
		count[d]++
	}
	var parts []string
	for _, d := range []string{"pass", "fail", "pending", "unknown"} {
		if count[d] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", count[d], d))
		}
	}
	return strings.Join(parts, ", ")
}

// call sends a request and decodes a JSON answer into out (if not nil).
func call(ctx context.Context, c *http.Client, method, u string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusNotModified {
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, u, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decode: %w", method, u, err)
		}
	}
	return resp.StatusCode, nil
}

// seed makes what the load queries, through the API, and returns the
// queries: every commit of the project, and the image by digest and by
// reference.
func seed(ctx context.Context, api *http.Client, c config) ([]string, error) {
	dir, err := os.MkdirTemp("", "gateload-repo-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=gateload", "GIT_AUTHOR_EMAIL=gateload@example.com",
			"GIT_COMMITTER_NAME=gateload", "GIT_COMMITTER_EMAIL=gateload@example.com",
			"GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_CONFIG_NOSYSTEM=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("git %v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out)), nil
	}
	write := func(name, content string) error {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, []byte(content), 0o644)
	}
	commit := func(msg string, files map[string]string) (string, error) {
		for n, content := range files {
			if err := write(n, content); err != nil {
				return "", err
			}
		}
		if _, err := git("add", "--all"); err != nil {
			return "", err
		}
		if _, err := git("commit", "--quiet", "--allow-empty", "-m", msg); err != nil {
			return "", err
		}
		return git("rev-parse", "HEAD")
	}
	if _, err := git("init", "--quiet", "--initial-branch=main"); err != nil {
		return nil, err
	}

	// Commits on main alternate between adding a weak random number
	// (gosec G404) in a new file and a clean change; the last one goes
	// on a feature branch, so its gate compares with main's baseline.
	type scanned struct{ sha, branch string }
	var commits []scanned
	sha, err := commit("module", map[string]string{
		"go.mod":  "module example.com/gateload\n\ngo 1.22\n",
		"main.go": "package main\n\nfunc main() {}\n",
	})
	if err != nil {
		return nil, err
	}
	commits = append(commits, scanned{sha, "main"})
	for i := 1; i < c.commits; i++ {
		branch := "main"
		if i == c.commits-1 {
			if _, err := git("checkout", "--quiet", "-b", "feature"); err != nil {
				return nil, err
			}
			branch = "feature"
		}
		files := map[string]string{fmt.Sprintf("notes/%d.txt", i): "change\n"}
		if i%2 == 1 {
			files[fmt.Sprintf("pkg%d/gen.go", i)] = fmt.Sprintf("package pkg%d\n\nimport \"math/rand\"\n\nfunc Gen() int { return rand.Intn(%d) }\n", i, i+2)
		}
		if sha, err = commit(fmt.Sprintf("change %d", i), files); err != nil {
			return nil, err
		}
		commits = append(commits, scanned{sha, branch})
	}

	project := "gateload-" + strings.ToLower(rand.Text()[:8])
	s := c.server
	if _, err := call(ctx, api, "POST", s+"/api/v1/projects", map[string]any{
		"name": project, "repo_url": "file://" + dir, "default_branch": "main",
		"webhook_secret": "gateload-" + rand.Text(), "policy": "fail_on:\n  severity: high\n",
	}, nil); err != nil {
		return nil, err
	}
	var ids []string
	for _, cm := range commits {
		var ref struct{ ID string }
		if _, err := call(ctx, api, "POST", s+"/api/v1/scans", map[string]any{"project": project, "commit": cm.sha, "branch": cm.branch}, &ref); err != nil {
			return nil, err
		}
		ids = append(ids, ref.ID)
	}
	// A waiver for the first weak file, so the gate applies one.
	if _, err := call(ctx, api, "POST", s+"/api/v1/waivers", map[string]any{
		"project": project, "rule": "G404", "path": "pkg1/**", "owner": "bench@example.com",
		"reason": "gateload fixture", "expires": time.Now().UTC().AddDate(0, 1, 0).Format(time.DateOnly),
	}, nil); err != nil {
		return nil, err
	}

	// A small random image in a registry on loopback, scanned by digest.
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	img, err := random.Image(4096, 2)
	if err != nil {
		return nil, err
	}
	tag, err := name.NewTag(strings.TrimPrefix(reg.URL, "http://")+"/gateload/app:v1", name.Insecure)
	if err != nil {
		return nil, err
	}
	if err := remote.Write(tag, img, remote.WithContext(ctx)); err != nil {
		return nil, err
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	var ref struct{ ID string }
	if _, err := call(ctx, api, "POST", s+"/api/v1/scans", map[string]any{"image": tag.String()}, &ref); err != nil {
		return nil, err
	}
	ids = append(ids, ref.ID)

	fmt.Fprintf(os.Stderr, "gateload: seeding %s: %d commit scans and an image scan\n", project, len(commits))
	deadline := time.Now().Add(15 * time.Minute)
	for _, id := range ids {
		for {
			var sc struct{ Status, Error string }
			if _, err := call(ctx, api, "GET", s+"/api/v1/scans/"+id, nil, &sc); err != nil {
				return nil, err
			}
			if sc.Status == "failed" {
				return nil, fmt.Errorf("scan %s failed: %s", id, sc.Error)
			}
			if sc.Status == "succeeded" {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("scan %s still %s after 15 minutes", id, sc.Status)
			}
			select {
			case <-time.After(250 * time.Millisecond):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	var queries []string
	for _, cm := range commits {
		queries = append(queries, "project="+project+"&commit="+cm.sha)
	}
	queries = append(queries, "image="+url.QueryEscape(digest.String()), "image="+url.QueryEscape(tag.String()))
	return queries, nil
}

// processCPU is the CPU time (user and system) a Linux process has used,
// from /proc/PID/stat, or -1 when it cannot be read.
func processCPU(pid int) time.Duration {
	if pid <= 0 {
		return -1
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The command name (field 2) may hold spaces: count from after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return -1
	}
	var utime, stime int64
	if _, err := fmt.Sscan(f[11], &utime); err != nil {
		return -1
	}
	if _, err := fmt.Sscan(f[12], &stime); err != nil {
		return -1
	}
	const ticks = 100 // USER_HZ, 100 on Linux
	return time.Duration(utime+stime) * time.Second / ticks
}
