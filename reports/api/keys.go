package api

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/reports"
)

// The report-signing keys, for the vendor's staff (their public halves
// are served without authentication at /.well-known/vigil/report-keys):
//
//	GET  /api/v1/report-keys          every key: the current one first, then the retired ones
//	POST /api/v1/report-keys/rotate   make a new current key; the old one is retired and keeps verifying

// KeyRotator lists and rotates the report-signing keys: *reports.KeyRing.
type KeyRotator interface {
	Keys(ctx context.Context) ([]reports.KeyInfo, error)
	Rotate(ctx context.Context) (reports.KeyInfo, error)
}

// Keys serves the report-signing keys' routes.
type Keys struct {
	ring KeyRotator
	h    *handler // for its error mapping
}

// NewKeys returns the keys' handlers; the server mounts each on its
// pattern behind its OAuth middleware and scopes.
func NewKeys(ring KeyRotator, log *slog.Logger) *Keys {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Keys{ring: ring, h: &handler{log: log}}
}

// KeyList is the answer of GET /api/v1/report-keys: every key on one page
// (a rotation adds one; they are few), as `vigil keys list --json` prints
// it.
func KeyList(keys []reports.KeyInfo) map[string]any {
	if keys == nil {
		keys = []reports.KeyInfo{}
	}
	return map[string]any{"keys": keys, "next_cursor": ""}
}

// List serves GET /api/v1/report-keys.
func (k *Keys) List(w http.ResponseWriter, r *http.Request) {
	ks, err := k.ring.Keys(r.Context())
	if err != nil {
		k.h.writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, KeyList(ks))
}

// Rotate serves POST /api/v1/report-keys/rotate: the new current key.
func (k *Keys) Rotate(w http.ResponseWriter, r *http.Request) {
	info, err := k.ring.Rotate(r.Context())
	if err != nil {
		k.h.writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, info)
}
