package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/licensing"
	"github.com/vigil-sec/vigil/reports"
	"github.com/vigil-sec/vigil/reports/attest"
	"github.com/vigil-sec/vigil/reports/bundle"
	"github.com/vigil-sec/vigil/reports/format"
	"github.com/vigil-sec/vigil/reports/render"
)

// NoTicket is what a bundle built without a support ticket prints where
// the ticket's number goes.
const NoTicket = "none"

// Tickets finds the support tickets bundles are built for;
// *reports.TicketService is one.
type Tickets interface {
	Get(ctx context.Context, a reports.Actor, ref string) (reports.TicketDetail, error)
}

// Config configures a Publisher. Every field but Tickets, KeyURL, TempDir
// and Logger is required.
type Config struct {
	Store Store
	Blobs Blobs
	// Releases reads the stored releases and their status.
	Releases *reports.Service
	// Pipeline reads the scans' results and judges their gates.
	Pipeline *ci.Service
	// Licensing names the products and the tenants.
	Licensing *licensing.Service
	// Keys signs the bundles with its current key.
	Keys *reports.KeyRing
	// Tickets finds the ticket a Recipient names; nil refuses a
	// Recipient with a ticket (BuildForTicket does not need it).
	Tickets Tickets
	// KeyURL, when not nil, is where a bundle's README tells recipients
	// to download the public key of the key ID as PEM (the server's
	// /.well-known/vigil/report-keys/{kid}.pem); nil says to ask the
	// vendor for it.
	KeyURL func(keyID string) string
	// TempDir holds the files of a bundle while it is built; "" means
	// os.TempDir.
	TempDir string
	Logger  *slog.Logger
}

// Publisher builds the signed audit report bundles of releases for their
// recipients, stores them, and reads them back (it is a
// reports.BundleReader). A bundle is built once per (release, tenant,
// ticket): building it again returns the stored one.
type Publisher struct {
	store    Store
	blobs    Blobs
	releases *reports.Service
	ci       *ci.Service
	lic      *licensing.Service
	keys     *reports.KeyRing
	tickets  Tickets
	keyURL   func(string) string
	tempDir  string
	log      *slog.Logger

	// building holds a lock per (release, tenant, ticket) being built
	// in this process, so that concurrent builds of one bundle build it
	// once; other processes meet at the store's unique key.
	mu       sync.Mutex
	building map[string]*flight
}

// New makes a Publisher.
func New(cfg Config) (*Publisher, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("publish: Config.Store is required")
	case cfg.Blobs == nil:
		return nil, errors.New("publish: Config.Blobs is required")
	case cfg.Releases == nil:
		return nil, errors.New("publish: Config.Releases is required")
	case cfg.Pipeline == nil:
		return nil, errors.New("publish: Config.Pipeline is required")
	case cfg.Licensing == nil:
		return nil, errors.New("publish: Config.Licensing is required")
	case cfg.Keys == nil:
		return nil, errors.New("publish: Config.Keys is required")
	}
	p := &Publisher{
		store: cfg.Store, blobs: cfg.Blobs, releases: cfg.Releases, ci: cfg.Pipeline, lic: cfg.Licensing,
		keys: cfg.Keys, tickets: cfg.Tickets, keyURL: cfg.KeyURL, tempDir: cfg.TempDir, log: cfg.Logger,
		building: map[string]*flight{},
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	return p, nil
}

// Recipient names who a bundle is built for.
type Recipient struct {
	// TenantID is the licensing tenant's ID; its name is printed on
	// every page.
	TenantID string
	// Ticket is the support ticket the bundle answers, by ID or number
	// ("1042"), "" for none (then NoTicket is printed). The ticket must
	// be the tenant's, and ask for the release's product.
	Ticket string
}

// recipient is a Recipient resolved: its tenant's name, its ticket's ID
// and number.
type recipient struct {
	reports.Recipient
	ticketID string
}

// Build builds the bundle of the release for the recipient and stores
// it, or returns the stored one when the release has a bundle for the
// same tenant and ticket (its bytes are never built again).
//
// Errors wrap reports.ErrNotFound for an unknown release,
// reports.ErrConflict for a release that is not ready (naming why), and
// reports.ErrInvalid for an unknown tenant or ticket, or a ticket that is
// another tenant's or does not ask for the release's product.
func (p *Publisher) Build(ctx context.Context, releaseID string, to Recipient) (reports.Bundle, error) {
	r, err := p.release(ctx, releaseID)
	if err != nil {
		return reports.Bundle{}, err
	}
	rc, err := p.resolve(ctx, to, r.ProductID)
	if err != nil {
		return reports.Bundle{}, err
	}
	return p.build(ctx, r, rc)
}

// BuildLatest is Build of the product's latest ready release
// (reports.Service.LatestRelease). Errors wrap reports.ErrNotFound for
// an unknown product, or one without a ready release.
func (p *Publisher) BuildLatest(ctx context.Context, productID string, to Recipient) (reports.Bundle, error) {
	r, err := p.releases.LatestRelease(ctx, productID)
	if err != nil {
		return reports.Bundle{}, err
	}
	rc, err := p.resolve(ctx, to, r.ProductID)
	if err != nil {
		return reports.Bundle{}, err
	}
	return p.build(ctx, r, rc)
}

// BuildForTicket builds (or reuses) the bundles an approved ticket is
// answered with, one per release: the release the approval named
// (t.Release, by ID, or by version: that version of each of the ticket's
// products that has it), which must be of one of the ticket's products,
// or else the latest ready release of each product the ticket asks for.
// Every bundle is for the ticket's tenant and prints its number. Errors
// are Build's (reports.ErrNotFound for a release named that does not
// exist, or a product without a ready release); the first one stops it.
func (p *Publisher) BuildForTicket(ctx context.Context, t reports.Ticket) ([]reports.Bundle, error) {
	base, err := p.resolveTenant(ctx, t.TenantID)
	if err != nil {
		return nil, err
	}
	base.Ticket, base.ticketID = fmt.Sprint(t.Number), t.ID
	rels, err := p.ticketReleases(ctx, t)
	if err != nil {
		return nil, err
	}
	out := make([]reports.Bundle, 0, len(rels))
	for _, r := range rels {
		b, err := p.build(ctx, r, base)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// ticketReleases are the releases a ticket is answered with (see
// BuildForTicket).
func (p *Publisher) ticketReleases(ctx context.Context, t reports.Ticket) ([]reports.StoredRelease, error) {
	var rels []reports.StoredRelease
	if t.Release == "" {
		for _, prod := range t.Products {
			r, err := p.releases.LatestRelease(ctx, prod)
			if err != nil {
				return nil, err
			}
			rels = append(rels, r)
		}
		return rels, nil
	}
	r, err := p.releases.Release(ctx, t.Release)
	switch {
	case err == nil:
		if !slices.Contains(t.Products, r.ProductID) {
			return nil, fmt.Errorf("%w: release %s is of product %q, which ticket %d does not ask for", reports.ErrInvalid, r.ID, r.ProductID, t.Number)
		}
		return []reports.StoredRelease{r}, nil
	case !errors.Is(err, reports.ErrNotFound):
		return nil, err
	}
	for _, prod := range t.Products { // a version
		r, ok, err := p.releaseVersion(ctx, prod, t.Release)
		if err != nil {
			return nil, err
		}
		if ok {
			rels = append(rels, r)
		}
	}
	if len(rels) == 0 {
		return nil, fmt.Errorf("release %q of %s (an ID or a version): %w", t.Release, strings.Join(t.Products, ", "), reports.ErrNotFound)
	}
	return rels, nil
}

// releaseVersion finds the product's release of the version.
func (p *Publisher) releaseVersion(ctx context.Context, productID, version string) (reports.StoredRelease, bool, error) {
	page := reports.Page{Limit: reports.MaxPageLimit}
	for {
		rs, next, err := p.releases.ListReleases(ctx, productID, page)
		if errors.Is(err, reports.ErrNotFound) {
			return reports.StoredRelease{}, false, nil
		}
		if err != nil {
			return reports.StoredRelease{}, false, err
		}
		for _, r := range rs {
			if r.Version == version {
				return r, true, nil
			}
		}
		if next == "" || next == page.Cursor {
			return reports.StoredRelease{}, false, nil
		}
		page.Cursor = next
	}
}

// release reads a stored release with its status now.
func (p *Publisher) release(ctx context.Context, id string) (reports.StoredRelease, error) {
	if strings.TrimSpace(id) == "" {
		return reports.StoredRelease{}, fmt.Errorf("%w: no release named", reports.ErrInvalid)
	}
	r, err := p.releases.Release(ctx, id)
	if errors.Is(err, reports.ErrNotFound) {
		return reports.StoredRelease{}, fmt.Errorf("release %q: %w", id, reports.ErrNotFound)
	}
	return r, err
}

// resolve names the recipient: its tenant, and its ticket, which must be
// the tenant's and ask for the product.
func (p *Publisher) resolve(ctx context.Context, to Recipient, productID string) (recipient, error) {
	rc, err := p.resolveTenant(ctx, to.TenantID)
	if err != nil {
		return recipient{}, err
	}
	if strings.TrimSpace(to.Ticket) == "" {
		rc.Ticket = NoTicket
		return rc, nil
	}
	if p.tickets == nil {
		return recipient{}, fmt.Errorf("%w: ticket %q: this publisher does not read tickets", reports.ErrInvalid, to.Ticket)
	}
	t, err := p.tickets.Get(ctx, reports.Actor{ClientID: reports.SystemActor, Staff: true}, to.Ticket)
	if errors.Is(err, reports.ErrNotFound) {
		return recipient{}, fmt.Errorf("%w: ticket %q: no such ticket", reports.ErrInvalid, to.Ticket)
	}
	if err != nil {
		return recipient{}, err
	}
	switch {
	case t.TenantID != rc.TenantID:
		return recipient{}, fmt.Errorf("%w: ticket %d is tenant %q's, not %q's", reports.ErrInvalid, t.Number, t.TenantID, rc.TenantID)
	case !slices.Contains(t.Products, productID):
		return recipient{}, fmt.Errorf("%w: ticket %d does not ask for product %q (it asks for %s)", reports.ErrInvalid, t.Number, productID, strings.Join(t.Products, ", "))
	}
	rc.Ticket, rc.ticketID = fmt.Sprint(t.Number), t.ID
	return rc, nil
}

func (p *Publisher) resolveTenant(ctx context.Context, tenantID string) (recipient, error) {
	if strings.TrimSpace(tenantID) == "" {
		return recipient{}, fmt.Errorf("%w: a bundle needs a tenant", reports.ErrInvalid)
	}
	tn, err := p.lic.GetTenant(ctx, tenantID)
	if errors.Is(err, licensing.ErrNotFound) {
		return recipient{}, fmt.Errorf("%w: tenant %q: no such tenant", reports.ErrInvalid, tenantID)
	}
	if err != nil {
		return recipient{}, fmt.Errorf("publish: tenant %q: %w", tenantID, err)
	}
	return recipient{Recipient: reports.Recipient{TenantID: tn.ID, TenantName: tn.Name}}, nil
}

// flight is a bundle being built in this process, and how many wait
// for it.
type flight struct {
	mu      sync.Mutex
	waiting int
}

// lock takes the lock of one bundle being built in this process; the
// function it returns releases it.
func (p *Publisher) lock(key string) func() {
	p.mu.Lock()
	f, ok := p.building[key]
	if !ok {
		f = &flight{}
		p.building[key] = f
	}
	f.waiting++
	p.mu.Unlock()
	f.mu.Lock()
	return func() {
		f.mu.Unlock()
		p.mu.Lock()
		if f.waiting--; f.waiting == 0 {
			delete(p.building, key)
		}
		p.mu.Unlock()
	}
}

// build returns the stored bundle of the release for the recipient, or
// builds and stores it.
func (p *Publisher) build(ctx context.Context, r reports.StoredRelease, to recipient) (reports.Bundle, error) {
	if r.Status != reports.ReleaseReady {
		return reports.Bundle{}, notReady(r)
	}
	unlock := p.lock(r.ID + "\x00" + to.TenantID + "\x00" + to.ticketID)
	defer unlock()
	if sb, err := p.store.FindBundle(ctx, r.ID, to.TenantID, to.ticketID); err == nil {
		return sb.Bundle, nil
	} else if !errors.Is(err, reports.ErrNotFound) {
		return reports.Bundle{}, fmt.Errorf("publish: %w", err)
	}

	start := time.Now()
	rel, err := p.Assemble(ctx, r)
	if err != nil {
		return reports.Bundle{}, err
	}
	sb, err := p.write(ctx, rel, to)
	if err != nil {
		return reports.Bundle{}, err
	}
	sb.ReleaseID = r.ID
	stored, err := p.store.CreateBundle(ctx, sb)
	if errors.Is(err, reports.ErrConflict) { // another process stored it first
		if found, ferr := p.store.FindBundle(ctx, r.ID, to.TenantID, to.ticketID); ferr == nil {
			return found.Bundle, nil
		}
	}
	if err != nil {
		return reports.Bundle{}, fmt.Errorf("publish: store the bundle: %w", err)
	}
	p.log.InfoContext(ctx, "report bundle built", slog.String("bundle", stored.ID), slog.String("release", r.ID),
		slog.String("product", r.ProductID), slog.String("version", r.Version), slog.String("tenant", to.TenantID),
		slog.String("ticket", to.Ticket), slog.String("sha256", stored.SHA256), slog.Int64("size", stored.Size),
		slog.String("key_id", stored.KeyID), slog.Duration("took", time.Since(start)))
	return stored.Bundle, nil
}

// document is a file of a bundle besides README.txt and the
// attestation, and how it is written.
type document struct {
	name  string
	write func(w io.Writer, rel *reports.Release, to reports.Recipient) error
}

// documents are the files of a bundle besides README.txt and the
// attestation, in the order the summary lists them (render.BundleFiles).
func documents(opts *render.Options) []document {
	return []document{
		{"sbom.cdx.json", func(w io.Writer, rel *reports.Release, _ reports.Recipient) error {
			return format.WriteCycloneDX(w, rel)
		}},
		{"sbom.spdx.json", func(w io.Writer, rel *reports.Release, _ reports.Recipient) error { return format.WriteSPDX(w, rel) }},
		{"sast.sarif", func(w io.Writer, rel *reports.Release, _ reports.Recipient) error { return format.WriteSARIF(w, rel) }},
		{"summary.pdf", func(w io.Writer, rel *reports.Release, to reports.Recipient) error {
			return render.PDF(w, rel, to, opts)
		}},
		{"summary.html", func(w io.Writer, rel *reports.Release, to reports.Recipient) error {
			return render.HTML(w, rel, to, opts)
		}},
	}
}

// write builds the bundle in a temporary directory (each document a file,
// then the ZIP, streamed: memory stays flat in their sizes), stores the
// ZIP in the blob store and returns its record, not yet stored.
func (p *Publisher) write(ctx context.Context, rel *reports.Release, to recipient) (StoredBundle, error) {
	priv, err := p.keys.SigningKey(ctx)
	if err != nil {
		return StoredBundle{}, fmt.Errorf("publish: %w", err)
	}
	signer, err := attest.NewSigner(priv)
	if err != nil {
		return StoredBundle{}, fmt.Errorf("publish: %w", err)
	}
	dir, err := os.MkdirTemp(p.tempDir, "vigil-bundle-*")
	if err != nil {
		return StoredBundle{}, fmt.Errorf("publish: %w", err)
	}
	defer os.RemoveAll(dir)

	opts := &render.Options{KeyID: signer.KeyID(), PredicateType: attest.PredicateType}
	var files []bundle.File
	for _, d := range documents(opts) {
		f, size, err := writeFile(dir, d.name, func(w io.Writer) error { return d.write(w, rel, to.Recipient) })
		if err != nil {
			return StoredBundle{}, fmt.Errorf("publish: %s: %w", d.name, err)
		}
		defer f.Close()
		files = append(files, bundle.File{Name: d.name, Size: size, Content: f})
	}
	var cfg bundle.Config
	if p.keyURL != nil {
		cfg.KeyURL = p.keyURL(signer.KeyID())
	}
	report := attest.NewAuditReport(rel, to.Recipient)
	h := sha256.New()
	var entries []bundle.Entry
	zf, _, err := writeFile(dir, "bundle.zip", func(w io.Writer) error {
		var err error
		entries, err = bundle.Build(ctx, io.MultiWriter(w, h), files, report, signer, &cfg)
		return err
	})
	if err != nil {
		return StoredBundle{}, fmt.Errorf("publish: build the bundle: %w", err)
	}
	defer zf.Close()
	sum := hex.EncodeToString(h.Sum(nil))
	key, size, err := p.blobs.Put(ctx, zf)
	if err != nil {
		return StoredBundle{}, fmt.Errorf("publish: store the bundle's bytes: %w", err)
	}
	if key != "sha256:"+sum {
		return StoredBundle{}, fmt.Errorf("publish: the blob store keyed the bundle %s, its SHA-256 is %s", key, sum)
	}
	bf := make([]reports.BundleFile, len(entries))
	for i, e := range entries {
		bf[i] = reports.BundleFile{Name: e.Name, Size: e.Size, SHA256: e.SHA256}
	}
	return StoredBundle{
		Bundle: reports.Bundle{
			ProductID: rel.ProductID, ProductName: rel.ProductName, Version: rel.Version,
			TenantID: to.TenantID, TenantName: to.TenantName, TicketID: to.ticketID, Ticket: to.Ticket,
			SHA256: sum, Size: size, KeyID: signer.KeyID(), Files: bf,
		},
		BlobKey: key,
	}, nil
}

// writeFile writes a new file in dir with write, and returns it open for
// reading from its start, with its size.
func writeFile(dir, name string, write func(io.Writer) error) (*os.File, int64, error) {
	// dir is this build's own temporary directory, name a constant.
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600) // #nosec G304 -- our temp dir, a constant name
	if err != nil {
		return nil, 0, err
	}
	if err := write(f); err != nil {
		_ = f.Close() // the write's error says more
		return nil, 0, err
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		_ = f.Close() // the seek's error says more
		return nil, 0, err
	}
	return f, size, nil
}

// Bundle returns the record of the stored bundle with the ID. Errors wrap
// reports.ErrNotFound for an unknown one.
func (p *Publisher) Bundle(ctx context.Context, id string) (reports.Bundle, error) {
	sb, err := p.store.GetBundle(ctx, id)
	if err != nil {
		return reports.Bundle{}, err
	}
	return sb.Bundle, nil
}

// OpenBundle opens the stored bytes of the bundle with the ID, seekable.
// Errors wrap reports.ErrNotFound for an unknown bundle; a stored ZIP that
// is gone or of another size than recorded is an error of its own.
func (p *Publisher) OpenBundle(ctx context.Context, id string) (reports.BundleContent, error) {
	sb, err := p.store.GetBundle(ctx, id)
	if err != nil {
		return nil, err
	}
	f, err := p.blobs.OpenSeeker(ctx, sb.BlobKey)
	if errors.Is(err, reports.ErrNotFound) {
		// The record exists but its bytes do not: not the caller's
		// unknown ID, the installation's problem.
		return nil, fmt.Errorf("publish: bundle %s: its stored ZIP %s is missing", id, sb.BlobKey)
	}
	if err != nil {
		return nil, fmt.Errorf("publish: bundle %s: %w", id, err)
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil || size != sb.Size {
		_ = f.Close() // read only
		return nil, fmt.Errorf("publish: bundle %s: its stored ZIP is %d bytes, %d recorded (%v)", id, size, sb.Size, err)
	}
	return f, nil
}

// The Publisher serves bundles to the secure links.
var _ reports.BundleReader = (*Publisher)(nil)
