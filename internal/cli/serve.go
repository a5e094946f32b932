package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/time/rate"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/internal/jobs"
	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/internal/store"
	licapi "github.com/vigil-sec/vigil/licensing/api"
	"github.com/vigil-sec/vigil/reports"
)

type serveFlags struct {
	storeFlags
	addr          string
	plainHTTP     bool
	tlsCert       string
	tlsKey        string
	insecure      []string
	logFormat     string
	workers       int
	registryToken string
	publicURL     string
	admissionCA   string
	actEvery      time.Duration
	actBurst      int
	autoApprove   string
	proxies       []string
	trusted       []netip.Prefix
	queue         queueFlags
	smtp          smtpFlags // smtp.go
}

// queueFlags tune the scan workers of serve and worker.
type queueFlags struct {
	rescueAfter time.Duration
	rescanDays  int
	reclaim     string
	outbound    outboundFlags
	policy      *httpx.OutboundPolicy // made by validate
}

// outboundFlags make the server's outbound policy (httpx.OutboundPolicy).
type outboundFlags struct {
	schemes       []string
	allowLoopback bool
	allowPrivate  bool
	allow         []string
}

func (o *outboundFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringSliceVar(&o.schemes, "outbound-schemes", httpx.DefaultOutboundSchemes, "schemes the server may connect with: https, http, ssh, git (repository, forge and webhook URLs), and file (repo_url of local paths and file:// on this host); comma-separated or repeated")
	fl.BoolVar(&o.allowLoopback, "outbound-allow-loopback", false, "let the server connect to loopback addresses (127.0.0.0/8, ::1): git remotes, registries, forges, webhook receivers on this host")
	fl.BoolVar(&o.allowPrivate, "outbound-allow-private", false, "let the server connect to private addresses (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7)")
	fl.StringArrayVar(&o.allow, "outbound-allow", nil, "let the server connect to this CIDR (or IP) whatever else says, link-local and metadata addresses included; repeatable")
}

// policy checks the flags and makes the policy.
func (o *outboundFlags) policy() (*httpx.OutboundPolicy, error) {
	p := &httpx.OutboundPolicy{AllowLoopback: o.allowLoopback, AllowPrivate: o.allowPrivate}
	for _, sc := range o.schemes {
		sc = strings.ToLower(strings.TrimSpace(sc))
		switch sc {
		case "https", "http", "ssh", "git", "file":
			p.Schemes = append(p.Schemes, sc)
		default:
			return nil, &usageError{fmt.Errorf("--outbound-schemes: %q is not one of https, http, ssh, git, file", sc)}
		}
	}
	if len(p.Schemes) == 0 {
		return nil, &usageError{errors.New("--outbound-schemes: give at least one scheme")}
	}
	for _, a := range o.allow {
		pre, err := netip.ParsePrefix(a)
		if err != nil {
			ip, ierr := netip.ParseAddr(a)
			if ierr != nil {
				return nil, &usageError{fmt.Errorf("--outbound-allow %q: want a CIDR (10.1.0.0/16) or an IP address", a)}
			}
			pre = netip.PrefixFrom(ip, ip.BitLen())
		}
		p.Allow = append(p.Allow, pre.Masked())
	}
	return p, nil
}

func (q *queueFlags) register(cmd *cobra.Command, reclaimDefault string) {
	q.outbound.register(cmd)
	fl := cmd.Flags()
	fl.DurationVar(&q.rescueAfter, "rescue-after", 0, "how long a scan job may stay running before another process deems its worker dead and runs it again; must exceed the job timeout (default: job timeout + 10m = 1h10m). Shorter rescues sooner after a crash, but a scan slower than it would run twice")
	fl.IntVar(&q.rescanDays, "rescan-days", ci.DefaultRescanDays, "scheduled rescans scan again every image digest first scanned for the project in this many days")
	if reclaimDefault != "" {
		fl.StringVar(&q.reclaim, "reclaim", reclaimDefault, "at start, run again at once the scans a dead process left running: auto (yes on SQLite, where this process is the only worker), always, never. Never 'always' with other workers on the database")
	}
}

func (q *queueFlags) validate(jcfg jobs.Config) error {
	var err error
	if q.policy, err = q.outbound.policy(); err != nil {
		return err
	}
	switch {
	case q.rescanDays < 1:
		return &usageError{fmt.Errorf("--rescan-days %d: want 1 or more", q.rescanDays)}
	case q.rescueAfter < 0:
		return &usageError{fmt.Errorf("--rescue-after %s is negative", q.rescueAfter)}
	case q.rescueAfter != 0 && q.rescueAfter <= jcfg.JobTimeout:
		return &usageError{fmt.Errorf("--rescue-after %s must exceed the job timeout %s, or a slow scan would run twice at once", q.rescueAfter, jcfg.JobTimeout)}
	}
	switch q.reclaim {
	case "", "auto", "always", "never":
	default:
		return &usageError{fmt.Errorf("--reclaim %q: want auto, always or never", q.reclaim)}
	}
	return nil
}

// reclaimOnStart says whether to reclaim running jobs at start.
func (q *queueFlags) reclaimOnStart(dialect store.Dialect) bool {
	return q.reclaim == "always" || (q.reclaim == "auto" && dialect == store.SQLite)
}

// sealKeyFile is where serve keeps the key that seals webhook secrets,
// unless --seal-key-file names another.
const sealKeyFile = "seal.key"

func newServeCmd(stdio Stdio) *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Vigil service: Management API, gate, webhooks and scan workers",
		Long: `Serve the Management API (/api/v1), the OAuth2 token endpoint, push and
registry webhooks (/hooks/), the Kubernetes admission webhook
(/admission/v1/validate), /healthz, /readyz and /metrics, and run scan
workers in this process.

With no flags it keeps everything in ./vigil-data: a SQLite database, the
blobs, a self-signed TLS certificate (its SHA-256 fingerprint is printed)
and the key that seals webhook secrets. The first start of an empty store
creates an admin client and prints its ID and secret once.

SIGTERM or Ctrl-C drains: no new requests or scans; running scans get a
grace period and are retried at the next start if cut off.

Crashes (SIGKILL, power loss): on SQLite this process is the only worker,
so at start it runs again at once the scans a dead process left running
(--reclaim auto). With --database postgres://… and workers on other hosts
it cannot tell a dead worker from a slow one, so it leaves that to the
queue's rescuer, which runs a scan again once it has been running for
--rescue-after (default 1h10m, the job timeout plus 10 minutes): lower it
to recover sooner, at the risk of a scan slower than it running twice (the
result is still written once).

Projects with a schedule (cron syntax) are rescanned on it: the default
branch's head, and the images first scanned for the project in the last
--rescan-days days. Rescans are scans of their own (trigger "schedule");
they never change the deploy gate of a commit or image, which reads its
first scan.

--public-url is the base URL clients use: access tokens carry it as their
issuer and are accepted only with it, so give every host of one
installation the same. --admission-client-ca makes the TLS server ask
clients for a certificate: /admission/v1/validate then answers only the
Kubernetes API server holding one that the CA issued (401 otherwise);
other endpoints still work without one.

--smtp-url (or $VIGIL_SMTP_URL) mails the secure link of an approved
ticket to the ticket's contact address; the mails are queued (sealed) and
retried with backoff for about a day, never holding up an approval, and
each outcome is written in the ticket's history. The mail server is
dialed through the outbound policy: allow a relay on this host or a
private network with --outbound-allow ADDRESS/32.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runServe(cmd.Context(), stdio, f)
		},
	}
	f.register(cmd)
	f.queue.register(cmd, "auto")
	f.smtp.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "addr", ":8443", "address to listen on")
	fl.BoolVar(&f.plainHTTP, "http", false, "serve plain HTTP (behind a TLS-terminating proxy)")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate (PEM); default: a self-signed one in DATA/tls")
	fl.StringVar(&f.tlsKey, "tls-key", "", "TLS private key (PEM) of --tls-cert")
	fl.StringArrayVar(&f.insecure, "insecure-registry", nil, "registry HOST[:PORT] reached over plain HTTP; repeatable")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fl.IntVar(&f.workers, "workers", 0, "scans run at once in this process (default: the number of CPUs)")
	fl.StringVar(&f.registryToken, "registry-token", "", "bearer token of registry notifications at /hooks/registry ($VIGIL_REGISTRY_TOKEN keeps it off the command line; empty disables the endpoint)")
	fl.StringVar(&f.publicURL, "public-url", "", "the server's base URL as clients reach it: the issuer (iss) of its access tokens and the base of links in commit statuses (default https://HOST:PORT from --addr, http:// with --http; set the same on every host)")
	fl.StringVar(&f.admissionCA, "admission-client-ca", "", "PEM file of the CA(s) that issue the Kubernetes API server's client certificate: /admission/v1/validate then needs a client certificate they verify (the rest of the API does not)")
	fl.DurationVar(&f.actEvery, "activation-interval", 6*time.Second, "license activations (online and offline): one more attempt allowed per client address every this long")
	fl.IntVar(&f.actBurst, "activation-burst", 10, "license activations: attempts allowed at once per client address before --activation-interval paces them")
	fl.StringVar(&f.autoApprove, "tickets-auto-approve", reports.AutoApproveOff, "support tickets: entitled approves at once the tickets of tenants holding an active entitlement to every product they ask for; off leaves every ticket to staff")
	fl.StringArrayVar(&f.proxies, "trusted-proxy", nil, "ADDR or PREFIX of a reverse proxy in front of the server whose X-Forwarded-For names the client that per-address rate limits count and access logs record; repeatable (default: none, the header is ignored)")
	configurable(cmd, stdio, sharedFlags) // after every flag is registered
	return cmd
}

func (f *serveFlags) validate() error {
	switch {
	case f.logFormat != "text" && f.logFormat != "json":
		return &usageError{fmt.Errorf("--log-format %q: want text or json", f.logFormat)}
	case (f.tlsCert == "") != (f.tlsKey == ""):
		return &usageError{errors.New("--tls-cert and --tls-key go together")}
	case f.plainHTTP && f.tlsCert != "":
		return &usageError{errors.New("--http serves plain HTTP: drop --tls-cert/--tls-key")}
	case f.workers < 0:
		return &usageError{fmt.Errorf("--workers %d is negative", f.workers)}
	case f.actEvery <= 0:
		return &usageError{fmt.Errorf("--activation-interval %v: want a positive duration", f.actEvery)}
	case f.actBurst < 1:
		return &usageError{fmt.Errorf("--activation-burst %d: want at least 1", f.actBurst)}
	case f.plainHTTP && f.admissionCA != "":
		return &usageError{errors.New("--admission-client-ca needs TLS: with --http the proxy in front sees the client certificates")}
	}
	if err := reports.CheckAutoApprove(f.autoApprove); err != nil {
		return &usageError{fmt.Errorf("--tickets-auto-approve: %w", err)}
	}
	var err error
	if f.trusted, err = httpx.ParseTrustedProxies(f.proxies); err != nil {
		return &usageError{fmt.Errorf("--trusted-proxy: %w", err)}
	}
	f.publicURL, err = checkPublicURL(f.publicURL)
	return err
}

// checkPublicURL validates --public-url and drops its trailing slashes;
// "" stays "".
func checkPublicURL(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", &usageError{fmt.Errorf("--public-url %q: want an http(s) base URL like https://vigil.example.com:8443, without credentials, query or fragment", raw)}
	}
	return strings.TrimRight(raw, "/"), nil
}

// defaultPublicURL is the base URL of a server listening on addr: the
// address's host, or the machine's host name when it listens on every
// interface.
func defaultPublicURL(addr net.Addr, useTLS bool) string {
	scheme := "https"
	if !useTLS {
		scheme = "http"
	}
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return scheme + "://" + addr.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
		if h, err := os.Hostname(); err == nil && h != "" {
			host = strings.ToLower(h)
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

func runServe(ctx context.Context, stdio Stdio, f serveFlags) error {
	if err := f.validate(); err != nil {
		return err
	}
	if err := f.queue.validate(jobs.DefaultConfig()); err != nil {
		return err
	}
	smtpServer, smtpCAs, err := f.smtp.settings()
	if err != nil {
		return err
	}
	var log *slog.Logger
	if f.logFormat == "json" {
		log = slog.New(slog.NewJSONHandler(stdio.Err, nil))
	} else {
		log = slog.New(slog.NewTextHandler(stdio.Err, nil))
	}
	if err := os.MkdirAll(f.data, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}

	db, err := f.openStore(ctx, log)
	if err != nil {
		return err
	}
	defer db.Close()
	blobs, err := store.NewBlobs(filepath.Join(f.data, "blobs"))
	if err != nil {
		return err
	}
	keyFile := f.sealKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(f.data, sealKeyFile)
	}
	key, err := loadOrCreateKey(keyFile, server.SealKeySize)
	if err != nil {
		return err
	}

	useTLS := !f.plainHTTP
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", f.addr, err)
	}
	defer ln.Close() // closed by Serve too; this covers the early returns
	publicURL := f.publicURL
	if publicURL == "" {
		publicURL = defaultPublicURL(ln.Addr(), useTLS)
	}

	jcfg := jobs.DefaultConfig()
	if f.workers > 0 {
		jcfg.Workers = f.workers
	}
	jcfg.RescueAfter = f.queue.rescueAfter
	lcfg := licapi.DefaultConfig()
	lcfg.ActivateRate, lcfg.ActivateBurst = rate.Every(f.actEvery), f.actBurst
	srv, err := server.New(ctx, server.Config{
		DB: db, Blobs: blobs, SealKey: key, Jobs: &jcfg,
		InsecureRegistries: f.insecure,
		RegistryToken:      f.registryToken,
		ReclaimOnStart:     f.queue.reclaimOnStart(db.Dialect()),
		RescanDays:         f.queue.rescanDays,
		Outbound:           f.queue.policy,
		Logger:             log,

		PublicURL:           publicURL,
		AdmissionClientCert: f.admissionCA != "",
		LicensingAPI:        &lcfg,
		TicketsAutoApprove:  f.autoApprove,
		TrustedProxies:      f.trusted,
		SMTP:                smtpServer,
		SMTPRootCAs:         smtpCAs,
	})
	if err != nil {
		return err
	}

	var hcfg = httpx.ServerConfig{Addr: f.addr, Handler: srv.Handler(), Logger: log}
	if useTLS {
		var fp string
		if f.tlsCert != "" {
			cert, err := httpx.LoadCert(f.tlsCert, f.tlsKey)
			if err != nil {
				return err
			}
			fp = httpx.Fingerprint(cert.Certificate[0])
			hcfg.TLSConfig = httpx.TLSConfig(cert)
		} else {
			cert, fingerprint, created, err := httpx.LoadOrCreateCert(filepath.Join(f.data, "tls"), nil)
			if err != nil {
				return err
			}
			if created {
				fmt.Fprintf(stdio.Out, "created a self-signed TLS certificate in %s\n", filepath.Join(f.data, "tls"))
			}
			fp = fingerprint
			hcfg.TLSConfig = httpx.TLSConfig(cert)
		}
		fmt.Fprintf(stdio.Out, "TLS certificate SHA-256 fingerprint: %s\n", fp)
		if f.admissionCA != "" {
			cas, err := httpx.LoadClientCAs(f.admissionCA)
			if err != nil {
				return &usageError{fmt.Errorf("--admission-client-ca: %w", err)}
			}
			httpx.RequestClientCerts(hcfg.TLSConfig, cas)
		}
	}

	creds, created, err := srv.Bootstrap(ctx)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(stdio.Out, "created the admin client (shown only now):\n  client_id:     %s\n  client_secret: %s\n", creds.ClientID, creds.ClientSecret)
	}

	// The workers stop through Stop, with their grace period, not
	// through ctx, which a signal cancels.
	if err := srv.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	scheme := "https"
	if !useTLS {
		scheme = "http"
	}
	fmt.Fprintf(stdio.Out, "public URL (token issuer): %s\n", publicURL)
	fmt.Fprintf(stdio.Out, "serving on %s://%s\n", scheme, ln.Addr())

	serveErr := httpx.Serve(ctx, httpx.NewServer(hcfg), ln, useTLS)
	log.Info("stopping: draining scans")
	stopCtx, cancel := context.WithTimeout(context.Background(), jcfg.StopTimeout+15*time.Second)
	defer cancel()
	return errors.Join(serveErr, srv.Stop(stopCtx))
}

// loadOrCreateKey reads a key of size bytes from path, or makes one there
// (mode 0600) when the file does not exist.
// sealKey returns the installation's seal key for the commands that open
// what it protects (clients, tenants, entitlements…). Next to a SQLite
// database in the data directory it is made on first use, as serve
// makes it; with --database it must exist (serve made it), since a new
// key would not open what the installation sealed, and migrating a
// legacy installation under it would lock serve out.
func (f *storeFlags) sealKey() ([]byte, error) {
	keyFile := f.sealKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(f.data, sealKeyFile)
	}
	if f.database == "" {
		return loadOrCreateKey(keyFile, server.SealKeySize)
	}
	b, err := os.ReadFile(keyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &usageError{fmt.Errorf("no seal key at %s: pass --seal-key-file with the key vigil serve uses, or point --data at its data directory", keyFile)}
	}
	if err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	if len(b) != server.SealKeySize {
		return nil, fmt.Errorf("key file %s holds %d bytes, want %d", keyFile, len(b), server.SealKeySize)
	}
	return b, nil
}

func loadOrCreateKey(path string, size int) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) != size {
			return nil, fmt.Errorf("key file %s holds %d bytes, want %d", path, len(b), size)
		}
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("key file: %w", err)
	}
	b = make([]byte, size)
	rand.Read(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) { // another process made it meanwhile
		return loadOrCreateKey(path, size)
	}
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if _, err := fh.Write(b); err != nil {
		fh.Close()
		return nil, fmt.Errorf("key file: %w", err)
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return nil, fmt.Errorf("key file: %w", err)
	}
	return b, fh.Close()
}
