package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/reports"
	"github.com/vigil-sec/vigil/reports/publish"
)

// The audit report bundles, for the vendor's staff:
//
//	POST /api/v1/releases/{id}/bundles   build (or find) the release's bundle for a tenant and ticket
//	GET  /api/v1/bundles/{id}            a bundle's record: what it holds, for whom, its digest
//	GET  /api/v1/bundles/{id}/download   its ZIP, as stored (Range supported)
//
// Customers get theirs through the secure links a ticket's approval
// makes, not here.

// Builder builds bundles and reads them back: *publish.Publisher.
type Builder interface {
	Build(ctx context.Context, releaseID string, to publish.Recipient) (reports.Bundle, error)
	reports.BundleReader
}

// Bundles serves the bundles' routes.
type Bundles struct {
	pub Builder
	h   *handler // for its error mapping
}

// NewBundles returns the bundles' handlers; the server mounts each on
// its pattern behind its OAuth middleware and scopes.
func NewBundles(pub Builder, log *slog.Logger) *Bundles {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Bundles{pub: pub, h: &handler{log: log}}
}

// Bundle is a bundle as the API shows it.
type Bundle struct {
	ID          string `json:"id"`
	ReleaseID   string `json:"release_id"`
	ProductID   string `json:"product_id"`
	ProductName string `json:"product_name"`
	Version     string `json:"version"`
	TenantID    string `json:"tenant_id"`
	TenantName  string `json:"tenant_name"`
	// TicketID is the ticket it answers, "" for none; Ticket is its
	// number as printed on every page ("none" without a ticket).
	TicketID string `json:"ticket_id,omitempty"`
	Ticket   string `json:"ticket"`
	// SHA256 and Size are the ZIP's.
	SHA256    string               `json:"sha256"`
	Size      int64                `json:"size"`
	KeyID     string               `json:"key_id"`
	Files     []reports.BundleFile `json:"files"`
	CreatedAt time.Time            `json:"created_at"`
	// Download is the path of its ZIP.
	Download string `json:"download"`
}

// APIBundle is a bundle as the API shows it.
func APIBundle(b reports.Bundle) Bundle {
	files := b.Files
	if files == nil {
		files = []reports.BundleFile{}
	}
	return Bundle{
		ID: b.ID, ReleaseID: b.ReleaseID, ProductID: b.ProductID, ProductName: b.ProductName, Version: b.Version,
		TenantID: b.TenantID, TenantName: b.TenantName, TicketID: b.TicketID, Ticket: b.Ticket,
		SHA256: b.SHA256, Size: b.Size, KeyID: b.KeyID, Files: files, CreatedAt: b.CreatedAt,
		Download: "/api/v1/bundles/" + b.ID + "/download",
	}
}

// buildRequest is the body of POST /api/v1/releases/{id}/bundles.
type buildRequest struct {
	TenantID string `json:"tenant_id"`
	// Ticket is the ticket's ID or number; "" for none.
	Ticket string `json:"ticket"`
}

// Build builds the release's bundle for the tenant and ticket, or finds
// the one built before: 201 with Location when this request built it,
// 200 when it was built before.
func (b *Bundles) Build(w http.ResponseWriter, r *http.Request) {
	var req buildRequest
	if err := httpx.DecodeJSON(w, r, &req, maxBody); err != nil {
		httpx.WriteErr(w, err)
		return
	}
	for field, v := range map[string]string{"tenant_id": req.TenantID, "ticket": req.Ticket} {
		if err := httpx.CheckIdentifier(field, v, maxField); err != nil {
			httpx.WriteErr(w, err)
			return
		}
	}
	if req.TenantID == "" {
		httpx.WriteErr(w, invalid("tenant_id is required: the tenant the bundle is for"))
		return
	}
	start := time.Now().UTC().Truncate(time.Microsecond)
	bd, err := b.pub.Build(r.Context(), r.PathValue("id"), publish.Recipient{TenantID: req.TenantID, Ticket: req.Ticket})
	if err != nil {
		b.h.writeError(w, r, err)
		return
	}
	status := http.StatusOK
	if !bd.CreatedAt.Before(start) {
		status = http.StatusCreated
		w.Header().Set("Location", "/api/v1/bundles/"+bd.ID)
	}
	httpx.WriteJSON(w, status, APIBundle(bd))
}

// Get answers a bundle's record.
func (b *Bundles) Get(w http.ResponseWriter, r *http.Request) {
	bd, err := b.pub.Bundle(r.Context(), r.PathValue("id"))
	if err != nil {
		b.h.writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, APIBundle(bd))
}

// unsafeName is what a download's file name may not hold.
var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._+-]+`)

// Download serves a bundle's ZIP as stored: ranges, conditional requests
// on its digest, an attachment never cached.
func (b *Bundles) Download(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	bd, err := b.pub.Bundle(r.Context(), id)
	if err != nil {
		b.h.writeError(w, r, err)
		return
	}
	content, err := b.pub.OpenBundle(r.Context(), id)
	if err != nil {
		b.h.writeError(w, r, err)
		return
	}
	defer content.Close()
	name := unsafeName.ReplaceAllString(fmt.Sprintf("%s-%s-ticket-%s", bd.ProductID, bd.Version, bd.Ticket), "_") + ".zip"
	h := w.Header()
	h.Set("Content-Type", "application/zip")
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("ETag", `"sha256:`+bd.SHA256+`"`)
	http.ServeContent(w, r, "", bd.CreatedAt, content)
}
