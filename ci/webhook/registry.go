package webhook

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"golang.org/x/time/rate"

	"github.com/vigil-sec/vigil/internal/httpx"
)

// Registry notification media types: the Docker distribution envelope, and
// plain JSON, which some registries send instead.
const (
	EnvelopeMediaType = "application/vnd.docker.distribution.events.v1+json"
	jsonMediaType     = "application/json"
)

// manifestMediaTypes are the targets of a push event that name an image:
// single-platform manifests and multi-platform indexes, Docker and OCI.
// Blob (layer and config) pushes are ignored.
var manifestMediaTypes = map[string]bool{
	"application/vnd.docker.distribution.manifest.v2+json":      true,
	"application/vnd.docker.distribution.manifest.list.v2+json": true,
	"application/vnd.oci.image.manifest.v1+json":                true,
	"application/vnd.oci.image.index.v1+json":                   true,
}

// ImageEnqueuer queues an image for scanning by digest. It reports whether
// a scan was queued: false when the digest was already scanned or queued.
type ImageEnqueuer interface {
	EnqueueImage(ctx context.Context, ref, digest string) (bool, error)
}

// RegistryConfig configures RegistryHandler.
type RegistryConfig struct {
	// Token is the bearer token the registry sends. Give either it or
	// TokenSHA256, the hex SHA-256 of the token, so the configuration need
	// not hold the token itself.
	Token       string
	TokenSHA256 string
	Enqueuer    ImageEnqueuer // required
	Logger      *slog.Logger  // nil discards
	// Rate and Burst limit requests per source address; zero means
	// DefaultRate and DefaultBurst, rate.Inf disables the limit.
	Rate  rate.Limit
	Burst int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client the limit counts (httpx.ClientIP); none: the peer.
	TrustedProxies []netip.Prefix
}

// Validate reports a missing or invalid field.
func (c *RegistryConfig) Validate() error {
	if c.Enqueuer == nil {
		return errors.New("webhook: RegistryConfig.Enqueuer is required")
	}
	if _, err := c.tokenHash(); err != nil {
		return err
	}
	if c.Rate < 0 || c.Burst < 0 {
		return errors.New("webhook: RegistryConfig.Rate and RegistryConfig.Burst must not be negative")
	}
	return nil
}

func (c *RegistryConfig) tokenHash() ([]byte, error) {
	switch {
	case c.Token != "" && c.TokenSHA256 != "":
		return nil, errors.New("webhook: give RegistryConfig.Token or RegistryConfig.TokenSHA256, not both")
	case c.Token != "":
		h := sha256.Sum256([]byte(c.Token))
		return h[:], nil
	case c.TokenSHA256 != "":
		h, err := hex.DecodeString(c.TokenSHA256)
		if err != nil || len(h) != sha256.Size {
			return nil, errors.New("webhook: RegistryConfig.TokenSHA256 must be 64 hex digits")
		}
		return h, nil
	default:
		return nil, errors.New("webhook: RegistryConfig.Token or RegistryConfig.TokenSHA256 is required")
	}
}

// RegistryHandler serves registry notifications at POST /hooks/registry.
//
// The body is a Docker distribution envelope:
//
//	{"events": [{"action": "push",
//	             "target": {"mediaType": "...", "digest": "sha256:...", "repository": "team/app", "tag": "1.2", "url": "..."},
//	             "request": {"host": "registry.example.com"}}]}
//
// Each push of a manifest or an index is handed to the ImageEnqueuer as
// host/repository@digest (the host is request.host, or the host of
// target.url); pulls, deletes and blob pushes are ignored. The answer is
// 202 {"enqueued": n}. A missing or wrong "Authorization: Bearer" token is
// 401 BAD_TOKEN and enqueues nothing.
func RegistryHandler(cfg RegistryConfig) (http.Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	hash, _ := cfg.tokenHash()
	return &registryServer{cfg: cfg, tokenHash: hash, log: logger(cfg.Logger), limiter: limiter(cfg.Rate, cfg.Burst)}, nil
}

type registryServer struct {
	cfg       RegistryConfig
	tokenHash []byte
	log       *slog.Logger
	limiter   *httpx.RateLimiter
}

// envelope is the Docker distribution notification envelope, trimmed to
// what is used.
type envelope struct {
	Events []struct {
		ID     string `json:"id"`
		Action string `json:"action"`
		Target struct {
			MediaType  string `json:"mediaType"`
			Digest     string `json:"digest"`
			Repository string `json:"repository"`
			Tag        string `json:"tag"`
			URL        string `json:"url"`
		} `json:"target"`
		Request struct {
			Host string `json:"host"`
		} `json:"request"`
	} `json:"events"`
}

func (s *registryServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "notifications must be sent with POST")
		return
	}
	addr := httpx.ClientIP(r, s.cfg.TrustedProxies...)
	if ok, wait := s.limiter.Allow(addr); !ok {
		httpx.WriteRateLimited(w, wait, "too many notifications from this address")
		return
	}
	ctx := r.Context()
	log := s.log.With("remote", addr)
	if !s.authorized(r) {
		log.WarnContext(ctx, "webhook: registry notification with a missing or wrong token")
		w.Header().Set("WWW-Authenticate", `Bearer realm="vigil"`)
		writeError(w, http.StatusUnauthorized, "BAD_TOKEN", "missing or wrong bearer token; configure the registry's notification endpoint with the token Vigil was given")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || (mt != EnvelopeMediaType && mt != jsonMediaType) {
		writeError(w, http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", "send "+EnvelopeMediaType)
		return
	}
	body, ok := readBody(w, r, MaxBodySize)
	if !ok {
		return
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		writeError(w, http.StatusBadRequest, "BAD_PAYLOAD", fmt.Sprintf("not a notification envelope: %v", err))
		return
	}

	enqueued := 0
	seen := make(map[string]bool)
	for i, ev := range env.Events {
		if ev.Action != "push" || !manifestMediaTypes[ev.Target.MediaType] {
			continue
		}
		ref, err := imageRef(ev.Request.Host, ev.Target.URL, ev.Target.Repository, ev.Target.Digest)
		if err != nil {
			// One bad event must not make the registry redeliver the rest.
			log.WarnContext(ctx, "webhook: skipping registry event", "index", i, "id", ev.ID, "err", err)
			continue
		}
		if seen[ref] {
			continue
		}
		seen[ref] = true
		ok, err := s.cfg.Enqueuer.EnqueueImage(ctx, ref, ev.Target.Digest)
		if err != nil {
			log.ErrorContext(ctx, "webhook: enqueueing image", "ref", ref, "err", err)
			writeError(w, http.StatusInternalServerError, "INTERNAL", "the image could not be queued for scanning; redeliver the notification later")
			return
		}
		if ok {
			enqueued++
		}
	}
	writeJSON(w, http.StatusAccepted, Response{Enqueued: enqueued})
}

// authorized compares the bearer token with the configured one in constant
// time, through their SHA-256 digests.
func (s *registryServer) authorized(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return false
	}
	got := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(got[:], s.tokenHash) == 1
}

// imageRef builds host/repository@digest and checks it is a valid
// reference.
func imageRef(host, targetURL, repo, digest string) (string, error) {
	if host == "" && targetURL != "" {
		if u, err := url.Parse(targetURL); err == nil {
			host = u.Host
		}
	}
	if host == "" {
		return "", errors.New("no registry host in request.host or target.url")
	}
	ref := host + "/" + repo + "@" + digest
	if _, err := name.NewDigest(ref, name.StrictValidation); err != nil {
		return "", fmt.Errorf("invalid image reference %q: %w", ref, err)
	}
	return ref, nil
}
