package publish_test

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/gittest"
	"github.com/vigil-sec/vigil/internal/seal"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing"
	"github.com/vigil-sec/vigil/reports"
	"github.com/vigil-sec/vigil/reports/publish"
	"github.com/vigil-sec/vigil/reports/reporttest"
	"github.com/vigil-sec/vigil/scanner"
	"github.com/vigil-sec/vigil/scanner/image/imagetest"
	"github.com/vigil-sec/vigil/scanner/sast"
	"github.com/vigil-sec/vigil/scanner/sbom"
)

// env is the real thing on a fresh database: the pipeline with the sast
// and sbom engines, the licensing platform, releases, tickets, the
// report-signing keys and a Publisher, with reporttest's repository and
// image scanned through the pipeline and stored, and a ready release of
// both.
type env struct {
	t       *testing.T
	db      *store.DB
	blobDir string
	ci      *ci.Service
	lic     *licensing.Service
	rel     *reports.Service
	tickets *reports.TicketService
	keys    *reports.KeyRing
	pub     *publish.Publisher

	repo    *gittest.Repo
	project ci.Project
	commit  string
	image   *imagetest.Fixture
	tenant  licensing.Tenant
	ticket  reports.TicketDetail
	release reports.StoredRelease
}

// policy is the project's policy: reporttest's, as a file (a denied
// license, an active waiver and an expired one).
const policy = `licenses:
  deny: [` + reporttest.DeniedLicense + `]
waivers:
  - rule: G404
    reason: the number is not a secret
    owner: alice@example.com
    expires: 2099-01-31
  - rule: G204
    path: main.go
    reason: lapsed exception
    owner: bob@example.com
    expires: 2020-10-30
`

// queue is the pipeline's job queue as a test drives it: nothing runs
// in the background; the test runs each scan it enqueued (RunScan), as a
// worker would.
type queue struct{}

func (queue) InsertScan(context.Context, string) (bool, error)           { return true, nil }
func (queue) InsertStatus(context.Context, string, string) (bool, error) { return true, nil }
func (queue) AddPeriodic(string, string) error                           { return nil }
func (queue) RemovePeriodic(string)                                      {}

func newEnv(t *testing.T, dialect store.Dialect) *env {
	t.Helper()
	ctx := t.Context()
	e := &env{t: t, db: storetest.Open(t, dialect), blobDir: filepath.Join(t.TempDir(), "blobs")}
	blobs, err := store.NewBlobs(e.blobDir)
	must(t, err)
	key := make([]byte, seal.KeySize)
	rand.Read(key)
	sealer, err := ci.NewSealer(key)
	must(t, err)
	e.image = imagetest.New(t)
	log := storetest.Logger(t)
	e.ci, err = ci.New(ci.Config{
		Store: e.db, Blobs: blobs, Queue: queue{}, Sealer: sealer, Cache: store.NewScanCache(e.db, blobs),
		Engines:    []scanner.Engine{sast.Engine(nil), sbom.Engine(nil)},
		Registries: ci.Registries{Insecure: []string{e.image.Registry}},
		Logger:     log,
	})
	must(t, err)
	lcfg := licensing.DefaultConfig()
	lcfg.Secret = []byte("publish-test-secret-of-32-bytes!")
	lcfg.Logger = log
	e.lic, err = licensing.New(ctx, e.db, lcfg)
	must(t, err)
	e.rel, err = reports.New(reports.Config{Store: e.db, Pipeline: e.ci, Licensing: e.lic, Logger: log})
	must(t, err)
	e.tickets, err = reports.NewTicketService(e.db, e.lic, reports.TicketConfig{Logger: log})
	must(t, err)
	e.keys, err = reports.NewKeyRing(e.db, key)
	must(t, err)
	e.pub, err = publish.New(publish.Config{
		Store: e.db, Blobs: blobs, Releases: e.rel, Pipeline: e.ci, Licensing: e.lic, Keys: e.keys, Tickets: e.tickets,
		KeyURL: func(kid string) string {
			return "https://vigil.example.com/.well-known/vigil/report-keys/" + kid + ".pem"
		},
		TempDir: t.TempDir(), Logger: log,
	})
	must(t, err)

	// The product, a tenant entitled to it and its ticket.
	_, err = e.lic.CreateProduct(ctx, reporttest.ProductID, reporttest.ProductName)
	must(t, err)
	e.tenant, err = e.lic.CreateTenant(ctx, reporttest.Recipient.TenantName)
	must(t, err)
	_, err = e.lic.CreateEntitlement(ctx, licensing.NewEntitlement{TenantID: e.tenant.ID, ProductID: reporttest.ProductID, Seats: 1})
	must(t, err)
	e.ticket, err = e.tickets.Open(ctx, reports.Actor{ClientID: "staff", Staff: true}, reports.NewTicket{
		TenantID: e.tenant.ID, Products: []string{reporttest.ProductID}, Subject: "Audit report", Message: "Please send the latest audit report.",
	})
	must(t, err)

	// reporttest's repository as a project with its policy, an API
	// waiver, and a scan of its commit; the image scanned by digest.
	e.repo = gittest.New(t)
	e.commit = e.repo.Commit("fixture", reporttest.Files)
	cp, err := e.ci.CreateProject(ctx, ci.ProjectSpec{Name: reporttest.Project, RepoURL: "file://" + e.repo.Dir, DefaultBranch: "main", Policy: policy})
	must(t, err)
	e.project = cp.Project
	_, err = e.ci.CreateWaiver(ctx, ci.ProjectWaiver{ProjectID: e.project.ID, Rule: "G401", Owner: "carol@example.com",
		Reason: "checksums only", Expires: time.Now().AddDate(0, 6, 0).UTC().Truncate(24 * time.Hour), CreatedBy: "test"})
	must(t, err)
	e.scan(ci.NewScan{Kind: ci.KindCommit, ProjectID: e.project.ID, CommitSHA: e.commit})
	e.scan(ci.NewScan{Kind: ci.KindImage, ImageDigest: e.image.Digest, ImageRef: e.image.Ref})

	e.release, err = e.rel.CreateRelease(ctx, reports.NewRelease{ProductID: reporttest.ProductID, Version: reporttest.Version,
		Projects: []string{reporttest.Project + "@" + e.commit}, Images: []string{e.image.Ref + "@" + e.image.Digest}})
	must(t, err)
	if e.release.Status != reports.ReleaseReady {
		t.Fatalf("release: %+v, want ready", e.release)
	}
	return e
}

// scan enqueues and runs a scan, which must succeed.
func (e *env) scan(n ci.NewScan) ci.Scan {
	e.t.Helper()
	ctx := e.t.Context()
	sc, _, err := e.ci.Enqueue(ctx, n)
	must(e.t, err)
	must(e.t, e.ci.RunScan(ctx, sc.ID))
	sc, _, err = e.ci.Scan(ctx, sc.ID)
	must(e.t, err)
	if sc.Status != ci.ScanSucceeded {
		e.t.Fatalf("scan of %+v: %s (%s)", n, sc.Status, sc.Error)
	}
	return sc
}

// blobCount is how many blobs the blob store holds.
func (e *env) blobCount() int {
	e.t.Helper()
	n := 0
	err := filepath.WalkDir(filepath.Join(e.blobDir, "sha256"), func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return err
	})
	must(e.t, err)
	return n
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
