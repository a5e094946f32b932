// Package api serves the online Licensing API over HTTP: activation, the
// nonce chain of later calls, and deactivation. See package licensing for
// the model and the security properties, and DESIGN "Licensing API".
//
//	POST   /api/v1/activate                             N-TenantId, N-ProductId; answers the first N-Nonce
//	GET    /api/v1/activation                           Bearer, N-TenantId, N-Nonce
//	POST   /api/v1/activation/refresh                   Bearer, N-TenantId, N-Nonce
//	POST   /api/v1/activation/features/{key}/{op}       op: checkout, return, track
//	DELETE /api/v1/activation                           Bearer, N-TenantId (no nonce)
//
// Calls of the chain answer a new N-Nonce, and accept an Idempotency-Key:
// a retry with the same key, request and nonce gets the stored answer.
package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/internal/strictjson"
	"github.com/vigil-sec/vigil/licensing"
)

// Headers of the Licensing API.
const (
	HeaderTenant         = "N-TenantId"
	HeaderProduct        = "N-ProductId"
	HeaderNonce          = "N-Nonce"
	HeaderFingerprint    = "N-Fingerprint"
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderReplayed       = "Idempotent-Replayed"
)

// maxBody bounds request bodies; maxIdempotencyKey the key's length.
const (
	maxBody           = 16 << 10
	maxIdempotencyKey = 255
)

// Config configures the handler. Start from DefaultConfig.
type Config struct {
	// ActivateRate and ActivateBurst limit activation attempts per client
	// address. There is no tenant-wide budget: the tenant is named by a
	// header anyone can send, so such a budget let a stranger who knew a
	// tenant's ID lock out its customers, and guessing codes (80 random
	// bits) from many addresses gains nothing a budget would stop.
	ActivateRate  rate.Limit
	ActivateBurst int
	// TrustedProxies whose X-Forwarded-For is believed (httpx.ClientIP).
	TrustedProxies []netip.Prefix
	// Logger receives errors; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the default configuration.
func DefaultConfig() Config {
	return Config{ActivateRate: rate.Every(6 * time.Second), ActivateBurst: 10}
}

type handler struct {
	svc    *licensing.Service
	cfg    Config
	log    *slog.Logger
	byAddr *httpx.RateLimiter
}

// New returns the Licensing API's handler, to be mounted at the root.
func New(svc *licensing.Service, cfg Config) http.Handler {
	h := &handler{svc: svc, cfg: cfg, log: cfg.Logger,
		byAddr: httpx.NewRateLimiter(httpx.RateLimiterConfig{Rate: cfg.ActivateRate, Burst: cfg.ActivateBurst}),
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/activate", h.activate)
	mux.HandleFunc("GET /api/v1/activation", h.chained(func(r *http.Request, req licensing.CallRequest) (licensing.Answer, error) {
		return h.svc.Get(r.Context(), req)
	}))
	mux.HandleFunc("POST /api/v1/activation/refresh", h.chained(func(r *http.Request, req licensing.CallRequest) (licensing.Answer, error) {
		return h.svc.Refresh(r.Context(), req)
	}))
	mux.HandleFunc("POST /api/v1/activation/features/{key}/{op}", h.chained(h.feature))
	mux.HandleFunc("DELETE /api/v1/activation", h.deactivate)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		mux.ServeHTTP(w, r)
	})
}

type activateBody struct {
	ActivationCode string `json:"activation_code"`
	SeatID         string `json:"seat_id"`
	SeatName       string `json:"seat_name,omitempty"`
	Fingerprint    string `json:"fingerprint,omitempty"`
}

func (h *handler) activate(w http.ResponseWriter, r *http.Request) {
	tenant := r.Header.Get(HeaderTenant)
	if ok, wait := h.byAddr.Allow(httpx.ClientIP(r, h.cfg.TrustedProxies...)); !ok {
		httpx.WriteRateLimited(w, wait, "too many activation attempts")
		return
	}
	var body activateBody
	if err := httpx.DecodeJSON(w, r, &body, maxBody); err != nil {
		httpx.WriteErr(w, err)
		return
	}
	for _, f := range [][2]string{{"seat_id", body.SeatID}, {"seat_name", body.SeatName}, {"fingerprint", body.Fingerprint}} {
		if err := httpx.CheckIdentifier(f[0], f[1], 0); err != nil {
			h.writeErr(w, r, &licensing.Error{Code: licensing.CodeInvalidRequest, Message: err.Error()})
			return
		}
	}
	grant, nonce, err := h.svc.Activate(r.Context(), licensing.ActivateRequest{
		TenantID: tenant, ProductID: r.Header.Get(HeaderProduct), ActivationCode: body.ActivationCode,
		SeatID: body.SeatID, SeatName: body.SeatName, Fingerprint: body.Fingerprint,
	})
	if err != nil {
		h.writeErr(w, r, err)
		return
	}
	w.Header().Set(HeaderNonce, nonce)
	httpx.WriteJSON(w, http.StatusOK, grant)
}

// chained serves a call of the nonce chain: it reads the headers and the
// bounded body, and writes the answer with its nonce.
func (h *handler) chained(call func(*http.Request, licensing.CallRequest) (licensing.Answer, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vigil-licensing"`)
			httpx.WriteError(w, http.StatusUnauthorized, licensing.CodeInvalidToken, "send the access token as Authorization: Bearer")
			return
		}
		key := r.Header.Get(HeaderIdempotencyKey)
		if len(key) > maxIdempotencyKey {
			httpx.WriteError(w, http.StatusBadRequest, licensing.CodeInvalidRequest, "Idempotency-Key is longer than 255 bytes")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			httpx.WriteError(w, http.StatusRequestEntityTooLarge, httpx.CodeBodyTooLarge, "the request body is larger than 16 KiB")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		ans, err := call(r, licensing.CallRequest{
			TenantID: r.Header.Get(HeaderTenant), Token: token, Nonce: r.Header.Get(HeaderNonce),
			Fingerprint: r.Header.Get(HeaderFingerprint), IdempotencyKey: key,
			Request: []byte(r.Method + "\n" + r.URL.Path + "\n" + string(body)),
		})
		if err != nil {
			h.writeErr(w, r, err)
			return
		}
		w.Header().Set(HeaderNonce, ans.Nonce)
		if ans.Replayed {
			w.Header().Set(HeaderReplayed, "true")
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(ans.Status)
		w.Write(append(ans.Body, '\n'))
	}
}

type trackBody struct {
	Amount int64 `json:"amount"`
}

// unmarshalTrack decodes a track body strictly; an empty one is no error.
func unmarshalTrack(body []byte, b *trackBody) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	return strictjson.UnmarshalKnown(body, b)
}

func (h *handler) feature(r *http.Request, req licensing.CallRequest) (licensing.Answer, error) {
	op := r.PathValue("op")
	var amount int64
	if op == licensing.Track && r.ContentLength != 0 {
		var b trackBody
		body, _ := io.ReadAll(r.Body) // chained has read and bounded it
		if err := unmarshalTrack(body, &b); err != nil {
			if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok && te.Field == "amount" {
				return licensing.Answer{}, &licensing.Error{Code: licensing.CodeInvalidField,
					Message: fmt.Sprintf("amount: want an integer from 1 to %d (0 or none means 1)", licensing.MaxTrackAmount)}
			}
			return licensing.Answer{}, &licensing.Error{Code: licensing.CodeInvalidRequest, Message: `the body of track must be {"amount": N} or empty`}
		}
		amount = b.Amount
	}
	return h.svc.Feature(r.Context(), req, r.PathValue("key"), op, amount)
}

func (h *handler) deactivate(w http.ResponseWriter, r *http.Request) {
	token, ok := bearer(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vigil-licensing"`)
		httpx.WriteError(w, http.StatusUnauthorized, licensing.CodeInvalidToken, "send the access token as Authorization: Bearer")
		return
	}
	if err := h.svc.Deactivate(r.Context(), r.Header.Get(HeaderTenant), token); err != nil {
		h.writeErr(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// writeErr answers a refusal with its code, and anything else as a bare
// 500 after logging it.
func (h *handler) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	if e, ok := licensing.AsError(err); ok {
		if e.Status() == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vigil-licensing"`)
		}
		httpx.WriteError(w, e.Status(), e.Code, e.Message)
		return
	}
	h.log.ErrorContext(r.Context(), "licensing api", slog.String("path", r.URL.Path), slog.Any("error", err))
	httpx.WriteError(w, http.StatusInternalServerError, httpx.CodeInternal, "internal error; retry later")
}
