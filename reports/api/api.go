// Package api serves the reports part of the Management API over HTTP:
// the releases of products (see package reports).
//
//	POST /api/v1/releases               make a release (201, Location)
//	GET  /api/v1/releases?product=ID    the product's releases, oldest first, paged
//	GET  /api/v1/releases/{id}          one release, its status as its scans now say
//
// and the audit report bundles built from releases (bundles.go, Bundles).
//
// The server mounts the handler on these patterns behind its OAuth
// middleware and scopes (internal/server); the handler only decodes, calls
// the Service and writes JSON.
package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/reports"
)

// Limits on a new release.
const (
	maxBody    = 64 << 10
	maxTargets = 200 // projects, and images, of one release
	maxField   = 512 // bytes of one identifier-like field
)

// CodeMissingScans is the error code of a release refused because some of
// its commits or images have no succeeded scan.
const CodeMissingScans = "MISSING_SCANS"

// Config configures the handler.
type Config struct {
	// Logger receives the errors that are not the client's; nil discards
	// them.
	Logger *slog.Logger
}

type handler struct {
	svc *reports.Service
	log *slog.Logger
}

// New returns the handler of the routes above, to be mounted on each.
func New(svc *reports.Service, cfg Config) http.Handler {
	h := &handler{svc: svc, log: cfg.Logger}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/releases", h.create)
	mux.HandleFunc("GET /api/v1/releases", h.list)
	mux.HandleFunc("GET /api/v1/releases/{id}", h.get)
	return mux
}

// Release is a release as the API shows it.
type Release struct {
	ID        string `json:"id"`
	ProductID string `json:"product_id"`
	Version   string `json:"version"`
	// Status is pending, ready or failed (reports.ReleaseStatus); Error
	// names the failed scans.
	Status    string        `json:"status"`
	Error     string        `json:"error,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
	Items     []ReleaseItem `json:"items"`
}

// ReleaseItem is a commit of a project, or an image digest, of a release
// with its scan.
type ReleaseItem struct {
	Kind       string `json:"kind"` // "commit" or "image"
	Project    string `json:"project,omitempty"`
	Commit     string `json:"commit,omitempty"`
	Image      string `json:"image,omitempty"`
	Digest     string `json:"digest,omitempty"`
	Scan       string `json:"scan_id"`
	ScanStatus string `json:"scan_status"`
	ScanError  string `json:"scan_error,omitempty"`
}

// APIRelease is a stored release as the API shows it.
func APIRelease(r reports.StoredRelease) Release {
	out := Release{ID: r.ID, ProductID: r.ProductID, Version: r.Version, Status: string(r.Status), Error: r.Error,
		CreatedAt: r.CreatedAt, Items: make([]ReleaseItem, len(r.Items))}
	for i, it := range r.Items {
		out.Items[i] = ReleaseItem{Kind: string(it.Kind), Project: it.Project, Commit: it.Commit, Image: it.ImageRef,
			Digest: it.Digest, Scan: it.ScanID, ScanStatus: string(it.ScanStatus), ScanError: it.ScanError}
	}
	return out
}

// createRequest is the body of POST /api/v1/releases.
type createRequest struct {
	ProductID   string   `json:"product_id"`
	Version     string   `json:"version"`
	Projects    []string `json:"projects"` // NAME or NAME@COMMIT
	Images      []string `json:"images"`   // REF@DIGEST
	ScanMissing bool     `json:"scan_missing"`
}

func (req *createRequest) validate() error {
	if len(req.Projects) > maxTargets || len(req.Images) > maxTargets {
		return invalid("a release names at most %d projects and %d images", maxTargets, maxTargets)
	}
	if err := httpx.CheckIdentifier("product_id", req.ProductID, maxField); err != nil {
		return err
	}
	if err := httpx.CheckIdentifier("version", req.Version, maxField); err != nil {
		return err
	}
	for field, vs := range map[string][]string{"projects": req.Projects, "images": req.Images} {
		for i, v := range vs {
			if err := httpx.CheckIdentifier(fmt.Sprintf("%s[%d]", field, i), v, maxField); err != nil {
				return err
			}
		}
	}
	if req.ProductID == "" {
		return invalid("product_id is required")
	}
	return nil
}

func invalid(format string, args ...any) *httpx.Error {
	return &httpx.Error{Status: http.StatusBadRequest, Code: httpx.CodeInvalidField, Message: fmt.Sprintf(format, args...)}
}

func (h *handler) create(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if err := httpx.DecodeJSON(w, r, &req, maxBody); err != nil {
		httpx.WriteErr(w, err)
		return
	}
	if err := req.validate(); err != nil {
		httpx.WriteErr(w, err)
		return
	}
	rel, err := h.svc.CreateRelease(r.Context(), reports.NewRelease{
		ProductID: req.ProductID, Version: req.Version, Projects: req.Projects, Images: req.Images, ScanMissing: req.ScanMissing,
	})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/releases/"+rel.ID)
	httpx.WriteJSON(w, http.StatusCreated, APIRelease(rel))
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	product := q.Get("product")
	if product == "" {
		httpx.WriteErr(w, invalid("product is required: the ID of the product whose releases to list"))
		return
	}
	limit, err := httpx.LimitParam(r, reports.MaxPageLimit)
	if err != nil {
		httpx.WriteErr(w, err)
		return
	}
	rs, next, err := h.svc.ListReleases(r.Context(), product, reports.Page{Cursor: q.Get("cursor"), Limit: limit})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := make([]Release, len(rs))
	for i, rel := range rs {
		out[i] = APIRelease(rel)
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"releases": out, "next_cursor": next})
}

func (h *handler) get(w http.ResponseWriter, r *http.Request) {
	rel, err := h.svc.Release(r.Context(), r.PathValue("id"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, APIRelease(rel))
}

// missingScans is the answer to a release refused for want of scans:
// the error's code and message, and each commit or image without a
// succeeded scan.
type missingScans struct {
	Code    string                `json:"code"`
	Message string                `json:"message"`
	Missing []reports.MissingScan `json:"missing"`
}

// writeError maps the Service's errors to statuses: the sentinels' own
// texts, with the input they name, are safe to show; anything else is
// logged and answered 500.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if me, ok := errors.AsType[*reports.MissingScansError](err); ok {
		httpx.WriteJSON(w, http.StatusBadRequest, missingScans{Code: CodeMissingScans, Message: me.Error(), Missing: me.Missing})
		return
	}
	msg := httpx.SafeMessage(err, reports.ErrNotFound, reports.ErrConflict, reports.ErrInvalid)
	switch {
	case errors.Is(err, reports.ErrNotFound):
		httpx.WriteError(w, http.StatusNotFound, "NOT_FOUND", msg)
	case errors.Is(err, reports.ErrConflict):
		httpx.WriteError(w, http.StatusConflict, "CONFLICT", msg)
	case errors.Is(err, reports.ErrInvalid):
		httpx.WriteError(w, http.StatusBadRequest, httpx.CodeInvalidField, msg)
	default:
		h.log.ErrorContext(r.Context(), "request failed", slog.String("path", r.URL.Path), slog.Any("error", err))
		httpx.WriteErr(w, err)
	}
}
