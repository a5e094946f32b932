package reports

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/licensing"
)

// Store is what the Service needs of the database: releases and their
// items. internal/store implements it. Its errors satisfy errors.Is with
// ErrNotFound, ErrConflict and ErrInvalid.
type Store interface {
	// CreateRelease stores the release and its items in one
	// transaction, with a new ID and creation time, and returns it.
	// ErrConflict when the product has a release of the version,
	// ErrNotFound when the product or one of the scans does not exist.
	CreateRelease(ctx context.Context, r StoredRelease) (StoredRelease, error)
	// GetRelease returns the release with its items and their scans'
	// statuses, or ErrNotFound.
	GetRelease(ctx context.Context, id string) (StoredRelease, error)
	// ListReleases returns one page of the product's releases, oldest
	// first, with their items, and the cursor of the next page ("" after
	// the last).
	ListReleases(ctx context.Context, productID string, p Page) ([]StoredRelease, string, error)
	// LatestReadyRelease returns the newest release of the product whose
	// scans have all succeeded, or ErrNotFound.
	LatestReadyRelease(ctx context.Context, productID string) (StoredRelease, error)
}

// Limits of Page.Limit.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 1000
)

// Page asks for one page of a list that grows at its end (oldest first):
// at most Limit items (0 means DefaultPageLimit; more than MaxPageLimit is
// ErrInvalid) after the item that Cursor, returned with the previous page,
// points at. The cursor is opaque to clients.
type Page struct {
	Cursor string
	Limit  int
}

// Config configures a Service. Every field but Logger is required.
type Config struct {
	Store Store
	// Pipeline finds the scans releases are made of, and queues those
	// a release asks for.
	Pipeline *ci.Service
	// Licensing knows the products releases are of.
	Licensing *licensing.Service
	// CheckImage, when not nil, checks the reference of an image before
	// a release queues its scan (the server's outbound policy); its error
	// refuses the release, and nothing is queued.
	CheckImage func(ref string) error
	Logger     *slog.Logger
}

// Service makes and reads the releases of products: the named, immutable
// sets of scans that reports are made of.
type Service struct {
	store      Store
	ci         *ci.Service
	lic        *licensing.Service
	checkImage func(ref string) error
	log        *slog.Logger
}

// New makes a Service.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("reports: Config.Store is required")
	case cfg.Pipeline == nil:
		return nil, errors.New("reports: Config.Pipeline is required")
	case cfg.Licensing == nil:
		return nil, errors.New("reports: Config.Licensing is required")
	}
	s := &Service{store: cfg.Store, ci: cfg.Pipeline, lic: cfg.Licensing, checkImage: cfg.CheckImage, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// product checks that the licensing product exists.
func (s *Service) product(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("%w: a release needs a product", ErrInvalid)
	}
	_, err := s.lic.GetProduct(ctx, id)
	if errors.Is(err, licensing.ErrNotFound) {
		return fmt.Errorf("product %q: %w", id, ErrNotFound)
	}
	return err
}

// wanted is a commit or image digest a new release names, with the scan
// that stands for it: zero when it was never scanned, or when a project
// was named without a commit and its default branch has no succeeded
// scan (then item.Commit is "" too).
type wanted struct {
	item    ReleaseItem
	scan    ci.Scan
	project ci.Project // for a commit
}

// target names the wanted item in errors.
func (w *wanted) target() string {
	if w.item.Kind == ci.KindCommit && w.item.Commit == "" {
		return w.project.Name
	}
	return w.item.Target()
}

// newScan is what to enqueue to scan the wanted item.
func (w *wanted) newScan() ci.NewScan {
	if w.item.Kind == ci.KindImage {
		return ci.NewScan{Kind: ci.KindImage, ImageDigest: w.item.Digest, ImageRef: w.item.ImageRef}
	}
	return ci.NewScan{Kind: ci.KindCommit, ProjectID: w.project.ID, CommitSHA: w.item.Commit}
}

// CreateRelease makes a release of a product from the scans of the
// commits and images n names or, when it names none, of the default
// branches of the product's production projects. A project without a
// commit stands for the newest succeeded scan of its default branch.
//
// Every commit and image needs a succeeded scan: otherwise the release
// is refused with a *MissingScansError naming each, unless n.ScanMissing,
// which queues their scans (a failed scan is retried; a default branch
// without one gets a scan of its head) and makes the release pending
// until they finish. ErrNotFound for an unknown product or project,
// ErrConflict when the product has a release of the version, ErrInvalid
// for malformed input.
func (s *Service) CreateRelease(ctx context.Context, n NewRelease) (StoredRelease, error) {
	n.ProductID, n.Version = strings.TrimSpace(n.ProductID), strings.TrimSpace(n.Version)
	if !versionRE.MatchString(n.Version) {
		return StoredRelease{}, fmt.Errorf("%w: version %q: want 1 to 100 letters, digits, '.', '_', '+' or '-', starting with a letter or digit", ErrInvalid, n.Version)
	}
	if err := s.product(ctx, n.ProductID); err != nil {
		return StoredRelease{}, err
	}
	ws, err := s.resolve(ctx, n)
	if err != nil {
		return StoredRelease{}, err
	}
	if err := checkDuplicates(ws); err != nil {
		return StoredRelease{}, err
	}
	missing := missingScans(ws)
	if len(missing) > 0 {
		if !n.ScanMissing {
			return StoredRelease{}, &MissingScansError{Missing: missing}
		}
		if err := s.scanMissing(ctx, ws); err != nil {
			return StoredRelease{}, err
		}
		if err := checkDuplicates(ws); err != nil { // a head may be a commit named too
			return StoredRelease{}, err
		}
	}
	r := StoredRelease{ProductID: n.ProductID, Version: n.Version, Items: make([]ReleaseItem, len(ws))}
	for i, w := range ws {
		r.Items[i] = w.item
		r.Items[i].ScanID = w.scan.ID
	}
	if r, err = s.store.CreateRelease(ctx, r); err != nil {
		return StoredRelease{}, err
	}
	for i, w := range ws {
		r.Items[i].ScanStatus, r.Items[i].ScanError = w.scan.Status, w.scan.Error
	}
	r.settle()
	s.log.InfoContext(ctx, "release created", slog.String("product", r.ProductID), slog.String("version", r.Version),
		slog.String("id", r.ID), slog.String("status", string(r.Status)), slog.Int("scans", len(r.Items)), slog.Int("queued", len(missing)))
	return r, nil
}

// resolve finds the scan that stands for each commit and image n names,
// or for the default branch of each production project of the product
// when it names none. It starts no work.
func (s *Service) resolve(ctx context.Context, n NewRelease) ([]*wanted, error) {
	var ws []*wanted
	projects := n.Projects
	if len(projects) == 0 && len(n.Images) == 0 {
		ps, err := s.ci.ProductProjects(ctx, n.ProductID)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			if p.Production {
				projects = append(projects, p.Name)
			}
		}
		if len(projects) == 0 {
			return nil, fmt.Errorf("%w: product %q has no production project: name projects or images, or mark projects (vigil projects update NAME --product %s --production)",
				ErrInvalid, n.ProductID, n.ProductID)
		}
	}
	for _, spec := range projects {
		pt, err := parseProject(spec)
		if err != nil {
			return nil, err
		}
		p, err := s.ci.Project(ctx, pt.name)
		if errors.Is(err, ci.ErrNotFound) {
			return nil, fmt.Errorf("project %q: %w", pt.name, ErrNotFound)
		}
		if err != nil {
			return nil, err
		}
		w := &wanted{item: ReleaseItem{Kind: ci.KindCommit, Project: p.Name, Commit: pt.commit}, project: p}
		if pt.commit == "" {
			w.scan, err = s.ci.DefaultBranchScan(ctx, p)
			w.item.Commit = w.scan.CommitSHA
		} else {
			w.scan, err = s.ci.TargetScan(ctx, w.newScan())
		}
		if err != nil && !errors.Is(err, ci.ErrNotFound) {
			return nil, err
		}
		ws = append(ws, w)
	}
	for _, spec := range n.Images {
		ref, digest, err := parseImage(spec)
		if err != nil {
			return nil, err
		}
		w := &wanted{item: ReleaseItem{Kind: ci.KindImage, ImageRef: ref, Digest: digest}}
		if w.scan, err = s.ci.TargetScan(ctx, w.newScan()); err != nil && !errors.Is(err, ci.ErrNotFound) {
			return nil, err
		}
		ws = append(ws, w)
	}
	return ws, nil
}

// scanMissing gives every wanted item without a succeeded scan a scan to
// wait for: the head of a default branch is looked up, a commit or image
// never scanned is enqueued, a failed scan is retried, and a queued or
// running one is waited for. Images are checked (Config.CheckImage)
// before anything is queued.
func (s *Service) scanMissing(ctx context.Context, ws []*wanted) error {
	for _, w := range ws {
		if w.item.Kind != ci.KindImage || w.scan.Status == ci.ScanSucceeded || s.checkImage == nil {
			continue
		}
		if err := s.checkImage(w.item.ImageRef + "@" + w.item.Digest); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrInvalid, w.target(), err)
		}
	}
	for _, w := range ws {
		if w.scan.Status == ci.ScanSucceeded {
			continue
		}
		if w.item.Kind == ci.KindCommit && w.item.Commit == "" {
			head, err := s.ci.DefaultBranchHead(ctx, w.project)
			if err != nil {
				s.log.WarnContext(ctx, "release: default branch head not found", slog.String("project", w.project.Name), slog.Any("error", err))
				return fmt.Errorf("%w: project %q: the head of its default branch %s could not be read from its repository; name a commit (%s@COMMIT)",
					ErrInvalid, w.project.Name, w.project.DefaultBranch, w.project.Name)
			}
			w.item.Commit = head
			if w.scan, err = s.ci.TargetScan(ctx, w.newScan()); err != nil && !errors.Is(err, ci.ErrNotFound) {
				return err
			}
		}
		var err error
		switch w.scan.Status {
		case ci.ScanSucceeded, ci.ScanQueued, ci.ScanRunning:
		case ci.ScanFailed:
			w.scan, err = s.ci.Retry(ctx, w.scan)
		default: // never scanned
			w.scan, _, err = s.ci.Enqueue(ctx, w.newScan())
		}
		if err != nil {
			return fmt.Errorf("reports: scan %s: %w", w.target(), err)
		}
	}
	return nil
}

// missingScans are the wanted items without a succeeded scan, with where
// their scans are.
func missingScans(ws []*wanted) []MissingScan {
	var missing []MissingScan
	for _, w := range ws {
		switch {
		case w.scan.Status == ci.ScanSucceeded:
		case w.item.Kind == ci.KindCommit && w.item.Commit == "":
			missing = append(missing, MissingScan{Target: w.target(), Status: "no succeeded scan of its default branch " + w.project.DefaultBranch})
		case w.scan.ID == "":
			missing = append(missing, MissingScan{Target: w.target(), Status: "never scanned"})
		case w.scan.Status == ci.ScanFailed:
			missing = append(missing, MissingScan{Target: w.target(), Status: "failed: " + w.scan.Error})
		default:
			missing = append(missing, MissingScan{Target: w.target(), Status: string(w.scan.Status)})
		}
	}
	return missing
}

// checkDuplicates refuses a release that names a commit or image twice.
func checkDuplicates(ws []*wanted) error {
	seen := map[string]bool{}
	for _, w := range ws {
		t := w.target()
		if seen[t] {
			return fmt.Errorf("%w: %s is named twice", ErrInvalid, t)
		}
		seen[t] = true
	}
	return nil
}

// Release returns the release with the ID, its status as its scans now
// say.
func (s *Service) Release(ctx context.Context, id string) (StoredRelease, error) {
	r, err := s.store.GetRelease(ctx, id)
	if err != nil {
		return StoredRelease{}, err
	}
	r.settle()
	return r, nil
}

// ListReleases pages through the releases of the product, oldest first,
// and returns the cursor of the next page ("" after the last).
// ErrNotFound for an unknown product.
func (s *Service) ListReleases(ctx context.Context, productID string, p Page) ([]StoredRelease, string, error) {
	if err := s.product(ctx, productID); err != nil {
		return nil, "", err
	}
	rs, next, err := s.store.ListReleases(ctx, productID, p)
	if err != nil {
		return nil, "", err
	}
	for i := range rs {
		rs[i].settle()
	}
	return rs, next, nil
}

// LatestRelease is "the latest report" of a product: its newest release
// whose scans have all succeeded. A pending release becomes the latest
// when its last scan succeeds, if no newer release is ready by then.
// ErrNotFound for an unknown product, or one without a ready release.
func (s *Service) LatestRelease(ctx context.Context, productID string) (StoredRelease, error) {
	if err := s.product(ctx, productID); err != nil {
		return StoredRelease{}, err
	}
	r, err := s.store.LatestReadyRelease(ctx, productID)
	if errors.Is(err, ErrNotFound) {
		return StoredRelease{}, fmt.Errorf("product %q has no ready release: %w", productID, ErrNotFound)
	}
	if err != nil {
		return StoredRelease{}, err
	}
	r.settle()
	return r, nil
}
