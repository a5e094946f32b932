package publish

import (
	"context"
	"io"
	"time"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/reports"
)

// Store is what a Publisher needs of the database: the records of built
// bundles, and the scans a gate history is drawn from. internal/store
// implements it. Its errors satisfy errors.Is with reports.ErrNotFound,
// reports.ErrConflict and reports.ErrInvalid.
type Store interface {
	// CreateBundle stores the record of a built bundle with a new ID and
	// creation time, and returns it. ErrConflict when the (release,
	// tenant, ticket) has a bundle already (another process built it
	// first); ErrNotFound when the release or the tenant does not exist.
	CreateBundle(ctx context.Context, b StoredBundle) (StoredBundle, error)
	// GetBundle returns the bundle with the ID, or ErrNotFound.
	GetBundle(ctx context.Context, id string) (StoredBundle, error)
	// FindBundle returns the bundle of the release for the tenant and
	// the ticket ("" for none), or ErrNotFound.
	FindBundle(ctx context.Context, releaseID, tenantID, ticketID string) (StoredBundle, error)
	// HistoryScans returns the scans of a target created in [From, To],
	// oldest first, at most Limit of them (the newest of the window when
	// there are more).
	HistoryScans(ctx context.Context, q HistoryQuery) ([]ci.Scan, error)
}

// StoredBundle is a bundle's record as the store keeps it: the bundle,
// and the key of its ZIP in the blob store.
type StoredBundle struct {
	reports.Bundle
	// BlobKey is the key of the ZIP's bytes in the blob store
	// ("sha256:" and the bundle's SHA256).
	BlobKey string
}

// HistoryQuery selects the scans of one target in a time window: the
// commit scans of a project (ProjectID), or the scans of an image
// (Digest, and any image whose reference is in Repository, tagged or by
// digest). Rescans count as scans.
type HistoryQuery struct {
	ProjectID string
	// Digest and Repository name an image: "sha256:…", and the
	// repository as name.Repository.Name spells it
	// ("registry.example.com/team/app"); Repository may be "".
	Digest     string
	Repository string
	From, To   time.Time
	Limit      int
}

// Blobs keeps the bundles' bytes, content-addressed, as ci.Blobs keeps
// the scans' reports; a bundle is read back seekable, so that a download
// can be served in ranges.
type Blobs interface {
	// Put stores the content of r and returns its key ("sha256:<hex>")
	// and size; equal content is stored once.
	Put(ctx context.Context, r io.Reader) (key string, size int64, err error)
	// OpenSeeker opens the blob for reading at any offset. Errors wrap
	// ErrNotFound for a blob that is not stored.
	OpenSeeker(ctx context.Context, key string) (io.ReadSeekCloser, error)
}
