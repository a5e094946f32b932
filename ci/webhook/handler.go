package webhook

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"

	"golang.org/x/time/rate"

	"github.com/vigil-sec/vigil/internal/httpx"
)

// MaxBodySize bounds the body of a webhook delivery. GitHub caps payloads
// at 25 MB.
const MaxBodySize = 25 << 20 // 25 MiB

// Rate limiting defaults: per source address.
const (
	DefaultRate  = rate.Limit(20) // requests per second
	DefaultBurst = 100

	// maxSources bounds how many source addresses are remembered at once.
	maxSources = 100_000
)

// ErrUnknownProject is what a SecretLookup returns (possibly wrapped) for a
// project that does not exist; the handler answers as it does a bad
// signature (401 BAD_SIGNATURE), so that callers without the secret
// cannot tell which projects exist.
var ErrUnknownProject = errors.New("unknown project")

// SecretLookup gives a project's webhook secret.
type SecretLookup interface {
	WebhookSecret(ctx context.Context, project string) (string, error)
}

// SecretsLookup is a SecretLookup whose projects may have two secrets in
// force: after a rotation, the new one and, for a grace period, the one it
// replaced, so that deliveries signed before the forge's configuration
// was updated are still accepted. When Config.Secrets implements it, the
// handler uses it instead of WebhookSecret, and checks every delivery
// against two secrets (the previous one, or a random one when there is
// none), so that the time taken does not tell whether a rotation is under
// way. previous is "" outside a grace period.
type SecretsLookup interface {
	WebhookSecrets(ctx context.Context, project string) (current, previous string, err error)
}

// Enqueuer queues the commits of a verified push for scanning. It returns
// how many scans it queued; commits already scanned or queued (a repeated
// delivery) are not counted.
type Enqueuer interface {
	EnqueueCommits(ctx context.Context, project string, p Push) (enqueued int, err error)
}

// Config configures Handler.
type Config struct {
	Secrets  SecretLookup // required
	Enqueuer Enqueuer     // required
	// Logger receives one line per rejected or failed delivery; nil
	// discards.
	Logger *slog.Logger
	// Rate and Burst limit requests per source address; zero means
	// DefaultRate and DefaultBurst, rate.Inf disables the limit.
	Rate  rate.Limit
	Burst int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client the limit counts (httpx.ClientIP); none: the peer.
	TrustedProxies []netip.Prefix
}

// Validate reports a missing required field.
func (c *Config) Validate() error {
	if c.Secrets == nil {
		return errors.New("webhook: Config.Secrets is required")
	}
	if c.Enqueuer == nil {
		return errors.New("webhook: Config.Enqueuer is required")
	}
	if c.Rate < 0 || c.Burst < 0 {
		return errors.New("webhook: Config.Rate and Config.Burst must not be negative")
	}
	return nil
}

// Response is the body of a successful answer.
type Response struct {
	Enqueued int `json:"enqueued"`
	// Ignored says why nothing was scanned, for deliveries that are not
	// pushes (a ping) or that delete a ref.
	Ignored string `json:"ignored,omitempty"`
}

// Handler serves push webhooks at POST /hooks/{provider}/{project}, where
// provider is github, gitlab or generic. Mount it at "/hooks/".
//
// A delivery is read (up to MaxBodySize), its signature checked against
// the project's secret before anything else is done with it, then parsed
// and handed to the Enqueuer; the answer is 202 {"enqueued": n}. Pings and
// other events than pushes get 200 with "ignored", as do ref deletions.
// Errors are {"code", "message"}: 401 BAD_SIGNATURE (also for an unknown
// project, after the same work), 404 UNKNOWN_PROVIDER, 400 BAD_PAYLOAD,
// 413 TOO_LARGE, 429 RATE_LIMITED.
func Handler(cfg Config) (http.Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &pushServer{cfg: cfg, log: logger(cfg.Logger), limiter: limiter(cfg.Rate, cfg.Burst), dummySecret: rand.Text()}
	mux := http.NewServeMux()
	mux.HandleFunc("/hooks/{provider}/{project}", s.serve)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "webhooks are served at /hooks/{github|gitlab|generic}/{project}")
	})
	return mux, nil
}

type pushServer struct {
	cfg     Config
	log     *slog.Logger
	limiter *httpx.RateLimiter
	// dummySecret stands in for the secret of an unknown project, so
	// that its deliveries cost what a known project's do. Nobody knows
	// it: a signature never matches it.
	dummySecret string
}

// provider is how one forge signs and describes its deliveries.
type provider struct {
	header string // of the signature or token
	verify func(secret string, body []byte, h http.Header) error
	parse  func(h http.Header, body []byte) (*Push, error)
}

var providers = map[string]provider{
	GitHub: {
		header: HeaderGitHubSignature,
		verify: func(secret string, body []byte, h http.Header) error {
			return VerifyGitHub(secret, body, h.Get(HeaderGitHubSignature))
		},
		parse: ParseGitHub,
	},
	GitLab: {
		header: HeaderGitLabToken,
		verify: func(secret string, _ []byte, h http.Header) error {
			return VerifyGitLab(secret, h.Get(HeaderGitLabToken))
		},
		parse: ParseGitLab,
	},
	Generic: {
		header: HeaderGenericSignature,
		verify: func(secret string, body []byte, h http.Header) error {
			return VerifyGeneric(secret, body, h.Get(HeaderGenericSignature))
		},
		parse: ParseGeneric,
	},
}

func (s *pushServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "webhooks must be sent with POST")
		return
	}
	addr := httpx.ClientIP(r, s.cfg.TrustedProxies...)
	if ok, wait := s.limiter.Allow(addr); !ok {
		httpx.WriteRateLimited(w, wait, "too many webhook deliveries from this address")
		return
	}
	name, project := r.PathValue("provider"), r.PathValue("project")
	prov, ok := providers[name]
	if !ok {
		writeError(w, http.StatusNotFound, "UNKNOWN_PROVIDER", fmt.Sprintf("unknown webhook provider %q; use github, gitlab or generic", name))
		return
	}
	log := s.log.With("provider", name, "project", project, "remote", addr)
	ctx := r.Context()

	// An unknown project, or one without a secret, is answered as a bad
	// signature, after the same work (reading the body, an HMAC against a
	// random secret): neither the status, the message nor the time tells
	// a caller without the secret whether the project exists.
	var secret, previous string
	var err error
	both, rotates := s.cfg.Secrets.(SecretsLookup)
	if rotates {
		secret, previous, err = both.WebhookSecrets(ctx, project)
	} else {
		secret, err = s.cfg.Secrets.WebhookSecret(ctx, project)
	}
	refusal := ""
	switch {
	case errors.Is(err, ErrUnknownProject):
		refusal = "unknown project"
	case err != nil:
		log.ErrorContext(ctx, "webhook: looking up the project's secret", "err", err)
		writeError(w, http.StatusInternalServerError, "INTERNAL", "the delivery could not be handled; retry later")
		return
	case secret == "":
		refusal = "the project has no webhook secret"
	}
	if refusal != "" {
		secret, previous = s.dummySecret, ""
	}

	body, ok := readBody(w, r, MaxBodySize)
	if !ok {
		return
	}
	err = prov.verify(secret, body, r.Header)
	if rotates {
		alt := previous
		if alt == "" {
			alt = s.dummySecret
		}
		if prevErr := prov.verify(alt, body, r.Header); err != nil && prevErr == nil && previous != "" {
			err = nil
			log.InfoContext(ctx, "webhook: delivery signed with the project's previous secret; update the forge's webhook before the grace period ends")
		}
	}
	if err == nil && refusal != "" {
		err = fmt.Errorf("%w: %s does not match the body and the project's webhook secret", ErrBadSignature, prov.header)
	}
	if err != nil {
		if refusal != "" {
			log.WarnContext(ctx, "webhook: rejected delivery", "reason", refusal)
		} else {
			log.WarnContext(ctx, "webhook: rejected delivery", "err", err)
		}
		writeError(w, http.StatusUnauthorized, "BAD_SIGNATURE", err.Error())
		return
	}

	push, err := prov.parse(r.Header, body)
	switch {
	case errors.Is(err, ErrIgnored):
		writeJSON(w, http.StatusOK, Response{Ignored: err.Error()})
		return
	case err != nil:
		log.WarnContext(ctx, "webhook: malformed delivery", "err", err)
		writeError(w, http.StatusBadRequest, "BAD_PAYLOAD", err.Error())
		return
	case push.Deleted:
		writeJSON(w, http.StatusOK, Response{Ignored: fmt.Sprintf("%s deleted; nothing to scan", push.Ref)})
		return
	}

	n, err := s.cfg.Enqueuer.EnqueueCommits(ctx, project, *push)
	if err != nil {
		log.ErrorContext(ctx, "webhook: enqueueing commits", "ref", push.Ref, "delivery", push.DeliveryID, "err", err)
		writeError(w, http.StatusInternalServerError, "INTERNAL", "the push could not be queued for scanning; redeliver it later")
		return
	}
	log.InfoContext(ctx, "webhook: push received", "ref", push.Ref, "delivery", push.DeliveryID, "commits", len(push.Commits), "enqueued", n)
	writeJSON(w, http.StatusAccepted, Response{Enqueued: n})
}

// readBody reads at most limit bytes of the request body, answering 413 or
// 400 itself when it cannot.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, "TOO_LARGE", fmt.Sprintf("the body is larger than the limit of %d bytes", limit))
		} else {
			writeError(w, http.StatusBadRequest, "BAD_PAYLOAD", "the body could not be read")
		}
		return nil, false
	}
	return body, true
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// limiter limits requests per source address (httpx.ClientIP: forwarding
// headers are believed from the configured trusted proxies only); zero rate and burst mean the defaults. When
// maxSources addresses are remembered, newcomers are refused rather than
// an address's bucket reset: a flood from many addresses does not loosen
// the limit of the addresses already sending.
func limiter(r rate.Limit, burst int) *httpx.RateLimiter {
	if r == 0 {
		r = DefaultRate
	}
	if burst == 0 {
		burst = DefaultBurst
	}
	return httpx.NewRateLimiter(httpx.RateLimiterConfig{Rate: r, Burst: burst, MaxKeys: maxSources, RefuseNewWhenFull: true})
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, errorBody{Code: code, Message: message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
