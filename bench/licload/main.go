// Command licload measures the Licensing API under load: activations or
// refreshes per second at a number of concurrent clients, with latency
// percentiles. Each client is a licensing/client.Client, so the load is
// what applications send (nonce chain, Idempotency-Key, state saved after
// every answer).
//
// Against a running server (vigil serve):
//
//	go run ./bench/licload -server http://127.0.0.1:8080 -targets seeds.txt -clients 100 -duration 20s -op refresh
//
// where seeds.txt has one "TENANT PRODUCT CODE" line per entitlement
// (clients take them in turn), or -tenant/-product/-code for one. Before a
// refresh run every client activates its own seat; vigil serve limits
// activation attempts per tenant and per client address (a burst of 10),
// so seed one entitlement per 10 clients, and let -spread give each client
// its own loopback source address (127.0.x.y) when the server is on
// loopback.
//
// In process, without that limit (for -op activate, and for profiles):
//
//	go run ./bench/licload -db postgres://127.0.0.1:5432/bench -clients 100 -duration 20s -op activate
//
// serves the same Licensing API handler and service as vigil serve on a
// loopback port, on the given store (migrated first), seeds its own
// entitlements (-entitlements, default 10, taken by the clients in turn),
// and can write a CPU profile (-cpuprofile).
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/licensing"
	"github.com/vigil-sec/vigil/licensing/api"
	"github.com/vigil-sec/vigil/licensing/client"
)

type target struct{ tenant, product, code string }

type options struct {
	server, db, targetsFile string
	one                     target
	clients                 int
	duration, warmup        time.Duration
	op                      string
	caCert                  string
	spread                  bool
	cpuProfile              string
	jsonOut                 bool
	entitlements            int
}

func main() {
	var o options
	flag.StringVar(&o.server, "server", "", "base URL of a running server (http:// or https://)")
	flag.StringVar(&o.db, "db", "", "serve the Licensing API in process on this store (sqlite:PATH or postgres://…) instead of -server")
	flag.StringVar(&o.targetsFile, "targets", "", `file of "TENANT PRODUCT CODE" lines, one per entitlement`)
	flag.StringVar(&o.one.tenant, "tenant", "", "tenant ID (instead of -targets)")
	flag.StringVar(&o.one.product, "product", "", "product ID (instead of -targets)")
	flag.StringVar(&o.one.code, "code", "", "activation code (instead of -targets)")
	flag.IntVar(&o.clients, "clients", 100, "concurrent clients")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "measured time")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured time before it")
	flag.StringVar(&o.op, "op", "refresh", "operation: activate or refresh")
	flag.StringVar(&o.caCert, "cacert", "", "PEM certificate to trust for an https -server (vigil serve's DATA/tls/cert.pem)")
	flag.BoolVar(&o.spread, "spread", true, "give each client its own loopback source address when the server is on loopback")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the measured time (useful with -db)")
	flag.BoolVar(&o.jsonOut, "json", false, "print the result as JSON")
	flag.IntVar(&o.entitlements, "entitlements", 10, "with -db: entitlements to seed; clients take them in turn (activations of one entitlement run one at a time)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "licload:", err)
		os.Exit(1)
	}
}

// Result is what a run measured.
type Result struct {
	Op        string  `json:"op"`
	Clients   int     `json:"clients"`
	Seconds   float64 `json:"seconds"`
	Ops       int     `json:"ops"`
	PerSecond float64 `json:"per_second"`
	P50Ms     float64 `json:"p50_ms"`
	P90Ms     float64 `json:"p90_ms"`
	P99Ms     float64 `json:"p99_ms"`
	MaxMs     float64 `json:"max_ms"`
	// CPUPerOpMs is the CPU time of this process (client and, with -db,
	// server) per operation in the measured time.
	CPUPerOpMs  float64 `json:"cpu_per_op_ms"`
	Errors      int     `json:"errors"`
	RateLimited int     `json:"rate_limited"`
	FirstError  string  `json:"first_error,omitempty"`
}

func run(ctx context.Context, o options, out io.Writer) error {
	if o.op != "activate" && o.op != "refresh" {
		return fmt.Errorf("-op %q: want activate or refresh", o.op)
	}
	if o.clients < 1 || o.duration <= 0 || o.warmup < 0 {
		return errors.New("-clients must be at least 1 and -duration positive")
	}
	if (o.server == "") == (o.db == "") {
		return errors.New("give -server URL or -db DSN")
	}
	var targets []target
	if o.db != "" {
		if o.entitlements < 1 {
			return errors.New("-entitlements must be at least 1")
		}
		base, ts, closeFn, err := serveInProcess(ctx, o.db, o.entitlements)
		if err != nil {
			return err
		}
		defer closeFn()
		o.server, targets = base, ts
	} else {
		var err error
		if targets, err = readTargets(o); err != nil {
			return err
		}
	}
	u, err := url.Parse(o.server)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-server %q: want http(s)://host:port", o.server)
	}
	var tlsConfig *tls.Config
	if o.caCert != "" {
		pem, err := os.ReadFile(o.caCert)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("-cacert %s: no PEM certificate", o.caCert)
		}
		tlsConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	ip := net.ParseIP(u.Hostname())
	spread := o.spread && ip != nil && ip.IsLoopback() && ip.To4() != nil

	run := time.Now().UnixNano()
	clients := make([]*client.Client, o.clients)
	for i := range clients {
		d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
		if spread {
			d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, byte(1+i/250), byte(1+i%250))}
		}
		tr := &http.Transport{DialContext: d.DialContext, TLSClientConfig: tlsConfig, MaxIdleConnsPerHost: 2, ForceAttemptHTTP2: true}
		tg := targets[i%len(targets)]
		cfg := client.Config{BaseURL: o.server, TenantID: tg.tenant, ProductID: tg.product,
			HTTPClient: &http.Client{Transport: tr, Timeout: time.Minute}, MaxRetries: 30, MaxRetryWait: time.Minute}
		if o.op == "activate" {
			cfg.MaxRetries = -1 // count what the server refuses, do not wait it out
		}
		if clients[i], err = client.New(cfg); err != nil {
			return err
		}
	}
	if o.op == "refresh" { // every client takes its seat first
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			errs []error
		)
		for i, c := range clients {
			wg.Go(func() {
				if _, err := c.Activate(ctx, targets[i%len(targets)].code, fmt.Sprintf("licload-%d-%d", run, i), nil); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("client %d: activate: %w", i, err))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}

	var (
		start    = time.Now()
		measured = start.Add(o.warmup)
		end      = measured.Add(o.duration)
		wg       sync.WaitGroup
		mu       sync.Mutex
		lat      []time.Duration
		res      = Result{Op: o.op, Clients: o.clients, Seconds: o.duration.Seconds()}
	)
	var stopProfile func()
	for i, c := range clients {
		wg.Go(func() {
			var mine []time.Duration
			var errs, limited int
			var first error
			for n := 0; ; n++ {
				t0 := time.Now()
				if t0.After(end) || ctx.Err() != nil {
					break
				}
				var err error
				if o.op == "refresh" {
					_, err = c.Refresh(ctx)
				} else {
					_, err = c.Activate(ctx, targets[i%len(targets)].code, fmt.Sprintf("licload-%d-%d-%d", run, i, n), nil)
				}
				t1 := time.Now()
				if t0.Before(measured) || t1.After(end) {
					continue
				}
				var ae *client.APIError
				switch {
				case err == nil:
					mine = append(mine, t1.Sub(t0))
				case errors.As(err, &ae) && ae.Code == client.CodeRateLimited:
					limited++
				default:
					errs++
					if first == nil {
						first = err
					}
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			res.Errors += errs
			res.RateLimited += limited
			if first != nil && res.FirstError == "" {
				res.FirstError = first.Error()
			}
			mu.Unlock()
		})
	}
	time.Sleep(time.Until(measured))
	cpu0 := cpuTime()
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
	}
	wg.Wait()
	cpu := cpuTime() - cpu0
	if stopProfile != nil {
		stopProfile()
	}
	if o.op == "refresh" {
		for _, c := range clients { // free the seats
			c.Deactivate(context.WithoutCancel(ctx))
		}
	}

	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	res.Ops = len(lat)
	res.PerSecond = float64(len(lat)) / o.duration.Seconds()
	res.P50Ms, res.P90Ms, res.P99Ms, res.MaxMs = pct(0.50), pct(0.90), pct(0.99), pct(1)
	if len(lat) > 0 {
		res.CPUPerOpMs = float64(cpu.Microseconds()) / 1000 / float64(len(lat))
	}
	if o.jsonOut {
		return json.NewEncoder(out).Encode(res)
	}
	fmt.Fprintf(out, "%s: %d clients, %d ops in %.0fs: %.1f/s  p50 %.1fms  p90 %.1fms  p99 %.1fms  max %.1fms  licload cpu %.3fms/op  errors %d  rate-limited %d\n",
		res.Op, res.Clients, res.Ops, res.Seconds, res.PerSecond, res.P50Ms, res.P90Ms, res.P99Ms, res.MaxMs, res.CPUPerOpMs, res.Errors, res.RateLimited)
	if res.FirstError != "" {
		fmt.Fprintf(out, "  first error: %s\n", res.FirstError)
	}
	return nil
}

func readTargets(o options) ([]target, error) {
	if o.targetsFile == "" {
		if o.one.tenant == "" || o.one.product == "" || o.one.code == "" {
			return nil, errors.New("give -targets FILE, or -tenant, -product and -code")
		}
		return []target{o.one}, nil
	}
	f, err := os.Open(o.targetsFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ts []target
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fs := strings.Fields(line)
		if len(fs) != 3 {
			return nil, fmt.Errorf("%s:%d: want TENANT PRODUCT CODE", o.targetsFile, n)
		}
		ts = append(ts, target{fs[0], fs[1], fs[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, fmt.Errorf("%s: no targets", o.targetsFile)
	}
	return ts, nil
}

// serveInProcess serves the Licensing API on a loopback port over the
// store at dsn, with the activation limit off, and seeds n entitlements
// of a million seats each.
func serveInProcess(ctx context.Context, dsn string, n int) (base string, ts []target, closeFn func(), err error) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	db, err := store.Open(ctx, dsn, store.WithMigrate(), store.WithLogger(log))
	if err != nil {
		return "", nil, nil, err
	}
	fail := func(err error) (string, []target, func(), error) {
		db.Close()
		return "", nil, nil, err
	}
	cfg := licensing.DefaultConfig()
	cfg.Logger = log
	cfg.Secret = make([]byte, 32) // a fresh store for this run only
	rand.Read(cfg.Secret)
	svc, err := licensing.New(ctx, db, cfg)
	if err != nil {
		return fail(err)
	}
	for i := range n {
		tn, err := svc.CreateTenant(ctx, fmt.Sprintf("licload-%d", i))
		if err != nil {
			return fail(err)
		}
		pr, err := svc.CreateProduct(ctx, "", fmt.Sprintf("licload-%d", i))
		if err != nil {
			return fail(err)
		}
		ent, err := svc.CreateEntitlement(ctx, licensing.NewEntitlement{TenantID: tn.ID, ProductID: pr.ID, Seats: 1_000_000, Lease: time.Hour})
		if err != nil {
			return fail(err)
		}
		ts = append(ts, target{tn.ID, pr.ID, ent.ActivationCode})
	}
	acfg := api.DefaultConfig()
	acfg.ActivateRate, acfg.ActivateBurst, acfg.Logger = rate.Inf, 1, log
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	srv := &http.Server{Handler: api.New(svc, acfg), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), ts, func() {
		srv.Close()
		db.Close()
	}, nil
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
