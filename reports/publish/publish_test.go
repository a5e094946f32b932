package publish_test

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/schematest"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/internal/tooltest"
	"github.com/vigil-sec/vigil/reports"
	"github.com/vigil-sec/vigil/reports/attest"
	"github.com/vigil-sec/vigil/reports/bundle"
	"github.com/vigil-sec/vigil/reports/publish"
	"github.com/vigil-sec/vigil/reports/render"
	"github.com/vigil-sec/vigil/reports/reporttest"
)

// TestPublish builds the bundle of a real release (reporttest's
// repository and image, scanned through the pipeline and stored) on each
// database, and checks it as a recipient would: it verifies against the
// installation's public keys, its SBOMs and SARIF are valid, its PDF
// carries the watermark; building again reuses it, and rebuilding it
// from scratch after the project's policy and waivers changed gives the
// same bytes. Releases that are not ready, unknown ones and recipients
// that do not fit are refused.
func TestPublish(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := newEnv(t, dialect)
		var b reports.Bundle
		t.Run("build", func(t *testing.T) { e.testBuild(t, &b) })
		t.Run("assemble", e.testAssemble)
		t.Run("rebuild", func(t *testing.T) { e.testRebuild(t, b) })
		t.Run("concurrent", e.testConcurrent)
		t.Run("refused", e.testRefused)
	})
}

// testAssemble checks what the report says of the stored scans: results,
// gates, waivers and policy as they stood, and the gate history.
func (e *env) testAssemble(t *testing.T) {
	ctx := t.Context()
	rel, err := e.pub.Assemble(ctx, e.release)
	must(t, err)
	t.Log(reporttest.Describe(rel))
	if !rel.Created.Equal(e.release.CreatedAt) || rel.ProductName != reporttest.ProductName || rel.Version != reporttest.Version || len(rel.Scans) != 2 {
		t.Fatalf("release: %+v", rel)
	}
	scans := rel.SortedScans()
	web, img := scans[0], scans[1]

	if web.Project != reporttest.Project || web.Commit != e.commit || web.Repository != e.project.RepoURL || web.PolicyVersion != "1" {
		t.Errorf("the repository's scan: project %q commit %q repository %q policy %q", web.Project, web.Commit, web.Repository, web.PolicyVersion)
	}
	if web.Gate == nil || web.Gate.Decision != ci.Fail {
		t.Fatalf("the repository's gate: %+v, want fail (a denied license, a finding whose waiver expired)", web.Gate)
	}
	codes := map[string]bool{}
	for _, r := range web.Gate.Reasons {
		codes[r.Code] = true
		codes[r.Code+" "+r.RuleID] = true
	}
	for _, want := range []string{ci.CodeLicenseDenied, ci.CodeWaiverExpired + " G204", ci.CodeFinding} {
		if !codes[want] {
			t.Errorf("the repository's gate lacks a reason %q: %+v", want, web.Gate.Reasons)
		}
	}
	var owners []string
	for _, w := range web.Waivers {
		owners = append(owners, w.Rule+" "+w.Owner)
	}
	if want := []string{"G404 alice@example.com", "G204 bob@example.com", "G401 carol@example.com"}; !slices.Equal(owners, want) {
		t.Errorf("the repository's waivers: %q, want %q (the policy's, expired included, then the API's)", owners, want)
	}
	suppressed := map[string]bool{}
	for _, f := range web.Result.Findings {
		suppressed[f.RuleID] = f.Suppressed
	}
	if !suppressed["G404"] || !suppressed["G401"] || suppressed["G204"] {
		t.Errorf("suppressed findings: %v, want G404 and G401 (active waivers), not G204 (expired)", suppressed)
	}
	if len(web.GateHistory) != 1 || web.GateHistory[0].Decision != ci.Fail {
		t.Errorf("the repository's gate history: %+v, want its one scan, failed", web.GateHistory)
	}

	if img.Image != e.image.Ref || img.Digest != e.image.Digest || img.PolicyVersion != "default" || len(img.Components()) == 0 {
		t.Errorf("the image's scan: %q %q policy %q, %d components", img.Image, img.Digest, img.PolicyVersion, len(img.Components()))
	}
	if img.Gate == nil || img.Gate.Decision != ci.Pass || len(img.GateHistory) != 1 || img.GateHistory[0].Decision != ci.Pass {
		t.Errorf("the image's gate %+v and history %+v, want pass", img.Gate, img.GateHistory)
	}

	// As it stood: a policy version and a waiver made after the release
	// change nothing in it.
	_, _, _, err = e.ci.SetPolicy(ctx, reporttest.Project, "fail_on: {severity: low, confidence: low}\n")
	must(t, err)
	_, err = e.ci.CreateWaiver(ctx, ci.ProjectWaiver{ProjectID: e.project.ID, Rule: "G204", Owner: "dave@example.com",
		Reason: "late", Expires: time.Now().AddDate(1, 0, 0).UTC().Truncate(24 * time.Hour), CreatedBy: "test"})
	must(t, err)
	again, err := e.pub.Assemble(ctx, e.release)
	must(t, err)
	w2 := again.SortedScans()[0]
	if w2.PolicyVersion != "1" || len(w2.Waivers) != 3 || w2.Gate.Decision != ci.Fail {
		t.Errorf("after the policy changed: policy %q, %d waivers, gate %s; want the release's as it stood", w2.PolicyVersion, len(w2.Waivers), w2.Gate.Decision)
	}
}

// testBuild builds the bundle, checks it, and builds it again.
func (e *env) testBuild(t *testing.T, built *reports.Bundle) {
	ctx := t.Context()
	to := publish.Recipient{TenantID: e.tenant.ID, Ticket: fmt.Sprint(e.ticket.Number)}
	b, err := e.pub.Build(ctx, e.release.ID, to)
	must(t, err)
	*built = b
	keys, err := e.keys.Keys(ctx)
	must(t, err)
	names := slices.Clone(render.BundleFiles)
	slices.Sort(names)
	var got []string
	for _, f := range b.Files {
		got = append(got, f.Name)
	}
	switch {
	case b.ID == "" || b.ReleaseID != e.release.ID || b.ProductID != reporttest.ProductID || b.ProductName != reporttest.ProductName || b.Version != reporttest.Version:
		t.Errorf("bundle names %+v", b)
	case b.TenantID != e.tenant.ID || b.TenantName != e.tenant.Name || b.TicketID != e.ticket.ID || b.Ticket != fmt.Sprint(e.ticket.Number):
		t.Errorf("bundle recipient %+v", b)
	case len(keys) != 1 || b.KeyID != keys[0].ID:
		t.Errorf("bundle key %q, keys %+v", b.KeyID, keys)
	case !slices.Equal(got, names):
		t.Errorf("bundle files %q, want %q", got, names)
	case b.CreatedAt.IsZero():
		t.Error("no creation time")
	}

	// The stored bytes: as recorded, and verified with the public keys.
	zipPath, data := e.download(t, b)
	pubs := e.publicKeys(t)
	res, err := bundle.Verify(ctx, zipPath, pubs)
	if err != nil {
		t.Fatalf("the bundle does not verify: %v", err)
	}
	if res.KeyID != b.KeyID || res.Report.Release.Version != reporttest.Version || res.Report.Recipient.Tenant != e.tenant.ID ||
		res.Report.Ticket != b.Ticket || len(res.Report.Scans) != 2 {
		t.Errorf("verified report: key %s, %+v", res.KeyID, res.Report)
	}
	for _, f := range res.Files {
		if i := slices.IndexFunc(b.Files, func(bf reports.BundleFile) bool { return bf.Name == f.Name }); i < 0 || b.Files[i].SHA256 != f.SHA256 || b.Files[i].Size != f.Size {
			t.Errorf("recorded file %s differs from the bundle's: %+v", f.Name, f)
		}
	}

	// What it holds: valid SBOMs and SARIF, a README naming the key's
	// URL, a PDF watermarked on every page.
	files := unzip(t, data)
	schematest.Validate(t, schematest.CycloneDX16, files["sbom.cdx.json"])
	schematest.Validate(t, schematest.SPDX23, files["sbom.spdx.json"])
	schematest.Validate(t, schematest.SARIF210, files["sast.sarif"])
	if url := "https://vigil.example.com/.well-known/vigil/report-keys/" + b.KeyID + ".pem"; !bytes.Contains(files[bundle.ReadmeName], []byte(url)) {
		t.Errorf("README.txt does not name the key's URL %s", url)
	}
	watermark := render.Watermark(reports.Recipient{TenantName: e.tenant.Name, Ticket: b.Ticket})
	if !bytes.Contains(files["summary.html"], []byte(watermark)) {
		t.Errorf("summary.html lacks the watermark %q", watermark)
	}
	// Again, for the same ticket named by ID: the stored bundle, no new
	// blob; and for the ticket as approval hands it over.
	blobs := e.blobCount()
	again, err := e.pub.Build(ctx, e.release.ID, publish.Recipient{TenantID: e.tenant.ID, Ticket: e.ticket.ID})
	must(t, err)
	if again.ID != b.ID || again.SHA256 != b.SHA256 || e.blobCount() != blobs {
		t.Errorf("building again: %s %s (%d blobs), want the stored %s (%d blobs)", again.ID, again.SHA256, e.blobCount(), b.ID, blobs)
	}
	approved := e.ticket.Ticket
	approved.Status = reports.TicketApproved
	bs, err := e.pub.BuildForTicket(ctx, approved)
	must(t, err)
	if len(bs) != 1 || bs[0].ID != b.ID {
		t.Errorf("BuildForTicket: %+v, want the stored bundle %s", bs, b.ID)
	}
	for _, named := range []string{e.release.ID, reporttest.Version} { // by ID, by version
		approved.Release = named
		if bs, err := e.pub.BuildForTicket(ctx, approved); err != nil || len(bs) != 1 || bs[0].ID != b.ID {
			t.Errorf("BuildForTicket of release %q: %+v %v, want the stored bundle %s", named, bs, err, b.ID)
		}
	}
	approved.Release = "9.9.9"
	if _, err := e.pub.BuildForTicket(ctx, approved); !errors.Is(err, reports.ErrNotFound) {
		t.Errorf("BuildForTicket of an unknown release: %v, want ErrNotFound", err)
	}
	if rd, err := e.pub.Bundle(ctx, b.ID); err != nil || rd.SHA256 != b.SHA256 || len(rd.Files) != len(b.Files) {
		t.Errorf("Bundle(%s): %+v %v", b.ID, rd, err)
	}

	// Last, as it may skip: every page of the PDF, as pdftotext reads it.
	pdftotext := tooltest.Need(t, "pdftotext", "poppler-utils")
	pdf := filepath.Join(t.TempDir(), "summary.pdf")
	must(t, os.WriteFile(pdf, files["summary.pdf"], 0o600))
	text, err := exec.Command(pdftotext, "-enc", "UTF-8", pdf, "-").Output()
	must(t, err)
	pages := strings.Split(string(text), "\f")
	if len(pages) > 1 && strings.TrimSpace(pages[len(pages)-1]) == "" {
		pages = pages[:len(pages)-1]
	}
	for i, p := range pages {
		if !strings.Contains(strings.Join(strings.Fields(p), " "), watermark) {
			t.Errorf("page %d of %d of summary.pdf lacks the watermark %q", i+1, len(pages), watermark)
		}
	}
}

// testRebuild builds the bundle b from scratch, after the project's
// policy and waivers changed (testAssemble) and the clock moved: the same
// bytes, the same blob. And for the tenant without a ticket: a bundle of
// its own.
func (e *env) testRebuild(t *testing.T, b reports.Bundle) {
	ctx := t.Context()
	if b.ID == "" {
		t.Skip("no bundle was built")
	}
	blobs := e.blobCount()
	e.deleteBundle(t, b.ID)
	rebuilt, err := e.pub.Build(ctx, e.release.ID, publish.Recipient{TenantID: e.tenant.ID, Ticket: b.Ticket})
	must(t, err)
	if rebuilt.ID == b.ID || rebuilt.SHA256 != b.SHA256 || rebuilt.Size != b.Size || e.blobCount() != blobs {
		t.Errorf("rebuilt: %s %s %d bytes (%d blobs), want new ID, %s %d bytes (%d blobs)", rebuilt.ID, rebuilt.SHA256, rebuilt.Size, e.blobCount(), b.SHA256, b.Size, blobs)
	}
	if _, err := e.pub.Bundle(ctx, b.ID); !errors.Is(err, reports.ErrNotFound) {
		t.Errorf("the deleted bundle: %v, want ErrNotFound", err)
	}
	if _, err := e.pub.OpenBundle(ctx, b.ID); !errors.Is(err, reports.ErrNotFound) {
		t.Errorf("opening the deleted bundle: %v, want ErrNotFound", err)
	}

	staff, err := e.pub.Build(ctx, e.release.ID, publish.Recipient{TenantID: e.tenant.ID})
	must(t, err)
	if staff.ID == rebuilt.ID || staff.Ticket != publish.NoTicket || staff.TicketID != "" || staff.SHA256 == rebuilt.SHA256 {
		t.Errorf("a bundle without a ticket: %+v", staff)
	}
	if _, err := bundle.Verify(ctx, e.writeZip(t, staff), e.publicKeys(t)); err != nil {
		t.Errorf("the bundle without a ticket does not verify: %v", err)
	}
}

// testConcurrent builds one bundle from several goroutines at once: one
// build, one record, one blob.
func (e *env) testConcurrent(t *testing.T) {
	to := publish.Recipient{TenantID: e.otherTenant(t)}
	blobs := e.blobCount()
	const n = 4
	ids := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			b, err := e.pub.Build(t.Context(), e.release.ID, to)
			if err != nil {
				t.Error(err)
			}
			ids <- b.ID
		})
	}
	wg.Wait()
	close(ids)
	var got []string
	for id := range ids {
		got = append(got, id)
	}
	if distinct := slices.Compact(slices.Sorted(slices.Values(got))); len(distinct) != 1 || distinct[0] == "" {
		t.Errorf("concurrent builds gave bundles %q, want one", got)
	}
	if e.blobCount() != blobs+1 {
		t.Errorf("concurrent builds stored %d blobs, want 1", e.blobCount()-blobs)
	}
}

// testRefused checks the releases and recipients Build refuses.
func (e *env) testRefused(t *testing.T) {
	ctx := t.Context()
	to := publish.Recipient{TenantID: e.tenant.ID, Ticket: e.ticket.ID}
	if _, err := e.pub.Build(ctx, "0190b7e2-0000-7000-8000-000000000000", to); !errors.Is(err, reports.ErrNotFound) {
		t.Errorf("an unknown release: %v, want ErrNotFound", err)
	}

	// A release waiting for a scan.
	next := e.repo.Commit("next", map[string]string{"README.md": "next\n"})
	pending, err := e.rel.CreateRelease(ctx, reports.NewRelease{ProductID: reporttest.ProductID, Version: "1.5.0",
		Projects: []string{reporttest.Project + "@" + next}, ScanMissing: true})
	must(t, err)
	if pending.Status != reports.ReleasePending {
		t.Fatalf("release 1.5.0: %s, want pending", pending.Status)
	}
	blobs := e.blobCount()
	_, err = e.pub.Build(ctx, pending.ID, to)
	if !errors.Is(err, reports.ErrConflict) || !strings.Contains(err.Error(), "pending") || !strings.Contains(err.Error(), next) {
		t.Errorf("a pending release: %v, want ErrConflict naming the scan it waits for", err)
	}
	if e.blobCount() != blobs {
		t.Error("a refused build stored a blob")
	}

	for name, bad := range map[string]publish.Recipient{
		"an unknown tenant":            {TenantID: "tnt_nope"},
		"no tenant":                    {Ticket: e.ticket.ID},
		"an unknown ticket":            {TenantID: e.tenant.ID, Ticket: "999999"},
		"another tenant's ticket":      {TenantID: e.otherTenant(t), Ticket: e.ticket.ID},
		"a malformed ticket reference": {TenantID: e.tenant.ID, Ticket: "#!"},
	} {
		if _, err := e.pub.Build(ctx, e.release.ID, bad); !errors.Is(err, reports.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

func (e *env) otherTenant(t *testing.T) string {
	t.Helper()
	tn, err := e.lic.CreateTenant(t.Context(), "Globex")
	must(t, err)
	return tn.ID
}

// deleteBundle deletes a bundle's record, as if it had never been built.
func (e *env) deleteBundle(t *testing.T, id string) {
	t.Helper()
	q := "DELETE FROM report_bundles WHERE id = ?"
	if e.db.Dialect() == store.Postgres {
		q = "DELETE FROM report_bundles WHERE id = $1"
	}
	if _, err := e.db.SQL().ExecContext(t.Context(), q, id); err != nil {
		t.Fatal(err)
	}
}

// download reads the stored bundle through OpenBundle, checks it is the
// bytes recorded, and writes it to a file.
func (e *env) download(t *testing.T, b reports.Bundle) (string, []byte) {
	t.Helper()
	rc, err := e.pub.OpenBundle(t.Context(), b.ID)
	must(t, err)
	defer rc.Close()
	// Seekable: the last 22 bytes are the end of the ZIP's directory.
	if _, err := rc.Seek(-22, io.SeekEnd); err != nil {
		t.Fatal(err)
	}
	tail, err := io.ReadAll(rc)
	must(t, err)
	if !bytes.HasPrefix(tail, []byte("PK\x05\x06")) {
		t.Errorf("the stored bundle's last 22 bytes are not a ZIP's end: %q", tail)
	}
	if _, err := rc.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(io.LimitReader(rc, 64<<20))
	must(t, err)
	sum := sha256.Sum256(data)
	if int64(len(data)) != b.Size || hex.EncodeToString(sum[:]) != b.SHA256 {
		t.Fatalf("the stored bundle is %d bytes with SHA-256 %x; recorded %d, %s", len(data), sum, b.Size, b.SHA256)
	}
	path := filepath.Join(t.TempDir(), "bundle.zip")
	must(t, os.WriteFile(path, data, 0o600))
	return path, data
}

func (e *env) writeZip(t *testing.T, b reports.Bundle) string {
	t.Helper()
	path, _ := e.download(t, b)
	return path
}

func (e *env) publicKeys(t *testing.T) []attest.PublicKey {
	t.Helper()
	keys, err := e.keys.PublicKeys(t.Context())
	must(t, err)
	var out []attest.PublicKey
	for _, k := range keys {
		pub, err := attest.NewPublicKey(k)
		must(t, err)
		out = append(out, pub)
	}
	return out
}

// unzip returns the files of a ZIP by name.
func unzip(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	must(t, err)
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		must(t, err)
		b, err := io.ReadAll(io.LimitReader(rc, 64<<20))
		rc.Close()
		must(t, err)
		out[f.Name] = b
	}
	return out
}
