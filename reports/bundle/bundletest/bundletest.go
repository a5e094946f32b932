// Package bundletest keeps audit report bundles in a directory: a real
// reports.BundleReader over real signed ZIPs, which bundle.Build makes
// with a key of the store's own (attest.GenerateKey), for tests and
// benchmarks of what serves bundles (secure links) while the
// installation's bundle store lives elsewhere.
//
//	bs, _ := bundletest.New(t.TempDir())
//	b, _ := bs.Add(ctx, reports.Bundle{TenantID: tn, TicketID: tk, ProductID: "app", Version: "1.4.0"},
//		bundle.Bytes("sbom.cdx.json", sbom))
//	links, _ := reports.NewLinkService(db, bs, lic, sealKey, reports.LinkConfig{})
package bundletest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/vigil-sec/vigil/reports"
	"github.com/vigil-sec/vigil/reports/attest"
	"github.com/vigil-sec/vigil/reports/bundle"
)

// Store keeps bundles as ZIP files in a directory, their records in
// memory. It is safe for concurrent use.
type Store struct {
	dir    string
	signer *attest.Signer

	mu      sync.Mutex
	bundles map[string]reports.Bundle
}

var _ reports.BundleReader = (*Store)(nil)

// New makes a store in dir (which must exist), with a new signing key.
func New(dir string) (*Store, error) {
	signer, _, err := attest.GenerateKey()
	if err != nil {
		return nil, err
	}
	return &Store{dir: dir, signer: signer, bundles: map[string]reports.Bundle{}}, nil
}

// PublicKey is the key that verifies the store's bundles.
func (s *Store) PublicKey() attest.PublicKey { return s.signer.PublicKey() }

// Path is where the bundle's ZIP is.
func (s *Store) Path(id string) string { return filepath.Join(s.dir, id+".zip") }

// Add builds a bundle of the files for b's recipient and release (b's ID
// is made when empty; its digest, size, key and files are filled in) and
// stores it.
func (s *Store) Add(ctx context.Context, b reports.Bundle, files ...bundle.File) (reports.Bundle, error) {
	if b.ID == "" {
		b.ID = uuid.Must(uuid.NewV7()).String()
	}
	if b.CreatedAt.IsZero() {
		b.CreatedAt = time.Now().UTC().Truncate(time.Second)
	}
	report := &attest.AuditReport{
		Release:   attest.Release{Product: b.ProductID, ProductName: b.ProductName, Version: b.Version, ReleasedAt: b.CreatedAt},
		Recipient: attest.Recipient{Tenant: b.TenantID, Name: b.TenantName},
		Ticket:    b.Ticket,
		Scans:     []attest.Scan{},
	}
	tmp, err := os.CreateTemp(s.dir, ".bundle-*")
	if err != nil {
		return reports.Bundle{}, err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	cw := &counter{w: io.MultiWriter(tmp, h)}
	entries, err := bundle.Build(ctx, cw, files, report, s.signer, nil)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return reports.Bundle{}, err
	}
	if err := os.Rename(tmp.Name(), s.Path(b.ID)); err != nil {
		return reports.Bundle{}, err
	}
	b.SHA256, b.Size, b.KeyID = hex.EncodeToString(h.Sum(nil)), cw.n, s.signer.KeyID()
	b.Files = make([]reports.BundleFile, len(entries))
	for i, e := range entries {
		b.Files[i] = reports.BundleFile{Name: e.Name, Size: e.Size, SHA256: e.SHA256}
	}
	s.mu.Lock()
	s.bundles[b.ID] = b
	s.mu.Unlock()
	return b, nil
}

// Replace builds the bundle id again of other files: the same ID with
// other bytes and another digest, as a bundle rebuilt or altered in
// place would be.
func (s *Store) Replace(ctx context.Context, id string, files ...bundle.File) (reports.Bundle, error) {
	b, err := s.Bundle(ctx, id)
	if err != nil {
		return reports.Bundle{}, err
	}
	return s.Add(ctx, b, files...)
}

// Remove forgets a bundle and deletes its file.
func (s *Store) Remove(id string) error {
	s.mu.Lock()
	delete(s.bundles, id)
	s.mu.Unlock()
	return os.Remove(s.Path(id))
}

// Bundle returns the bundle's record.
func (s *Store) Bundle(_ context.Context, id string) (reports.Bundle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.bundles[id]
	if !ok {
		return reports.Bundle{}, fmt.Errorf("bundle %q: %w", id, reports.ErrNotFound)
	}
	return b, nil
}

// OpenBundle opens the bundle's ZIP.
func (s *Store) OpenBundle(ctx context.Context, id string) (reports.BundleContent, error) {
	if _, err := s.Bundle(ctx, id); err != nil {
		return nil, err
	}
	f, err := os.Open(s.Path(id))
	if os.IsNotExist(err) {
		return nil, fmt.Errorf("bundle %q: %w", id, reports.ErrNotFound)
	}
	return f, err
}

type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
