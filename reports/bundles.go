package reports

import (
	"context"
	"io"
	"time"
)

// Bundle is a built audit report bundle as Vigil keeps it: one signed ZIP
// per (release, recipient), built once and then served as stored (its
// bytes are never rebuilt for a download). reports/publish builds them;
// secure links (links.go) serve them.
type Bundle struct {
	ID        string
	ReleaseID string
	// ProductID, ProductName and Version name what was released.
	ProductID   string
	ProductName string
	Version     string
	// Recipient is who the bundle was prepared for: the tenant and the
	// ticket printed on every page.
	TenantID   string
	TenantName string
	TicketID   string
	Ticket     string // the ticket's number as people quote it
	// SHA256 is the hex SHA-256 of the ZIP's bytes, Size their length.
	SHA256 string
	Size   int64
	// KeyID is the ID of the report-signing key that signed it.
	KeyID string
	// Files are the files inside the ZIP, sorted by name.
	Files     []BundleFile
	CreatedAt time.Time
}

// BundleFile is one file inside a bundle.
type BundleFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // hex
}

// BundleContent is a stored bundle's bytes: seekable, so that a download
// can be served in ranges. Close releases it.
type BundleContent interface {
	io.ReadSeeker
	io.Closer
}

// BundleReader is what serving a bundle needs: its record and its bytes.
// Errors wrap ErrNotFound for an unknown ID.
type BundleReader interface {
	Bundle(ctx context.Context, id string) (Bundle, error)
	OpenBundle(ctx context.Context, id string) (BundleContent, error)
}
