package publish

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/licensing"
	"github.com/vigil-sec/vigil/reports"
)

// What a report says of a release is assembled from what the pipeline
// stored, as it stood when the release was cut, so that assembling the
// same release again gives the same documents:
//
//   - each scan's result as stored (ci.Service.Result);
//   - its gate decision judged at the release's creation (or when the scan
//     finished, for a release that waited for it) by the policy version
//     and the waivers of that time (ci.Service.JudgeAt), which also
//     annotates the result's findings with the waivers that applied;
//   - the project's waivers of that time, expired ones included;
//   - the gate history of the HistoryDays before the release: gate
//     decisions are not stored, so it is drawn from the target's scans
//     in that window, each judged as it stood when it finished (a failed
//     scan is a fail, one not finished by the release's creation is
//     pending).

const (
	// HistoryDays is how far back before a release its gate history
	// reaches: the report's chart shows the last 90 days.
	HistoryDays = 90
	// MaxHistoryScans bounds the scans a target's gate history is drawn
	// from (the newest of the window when there are more).
	MaxHistoryScans = 2000
)

// Assemble makes the content of the release's report from the stored
// scans: a reports.Release whose Created is the stored release's
// creation time. The release must be ready (ErrConflict otherwise).
func (p *Publisher) Assemble(ctx context.Context, r reports.StoredRelease) (*reports.Release, error) {
	if r.Status != reports.ReleaseReady {
		return nil, notReady(r)
	}
	product, err := p.lic.GetProduct(ctx, r.ProductID)
	if errors.Is(err, licensing.ErrNotFound) {
		return nil, fmt.Errorf("release %s: product %q: %w", r.ID, r.ProductID, reports.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("publish: release %s: %w", r.ID, err)
	}
	rel := &reports.Release{
		ProductID: r.ProductID, ProductName: product.Name, Version: r.Version,
		Created: r.CreatedAt.UTC(), Scans: make([]reports.ReleaseScan, 0, len(r.Items)),
	}
	projects := map[string]ci.Project{}
	for _, it := range r.Items {
		rs, err := p.assembleScan(ctx, r, it, projects)
		if err != nil {
			return nil, fmt.Errorf("publish: release %s, %s: %w", r.ID, it.Target(), err)
		}
		rel.Scans = append(rel.Scans, rs)
	}
	if err := rel.Validate(); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	return rel, nil
}

// notReady is the ErrConflict of a release that cannot be reported on.
func notReady(r reports.StoredRelease) error {
	why := "some of its scans have not finished"
	if r.Status == reports.ReleaseFailed {
		why = r.Error
	} else {
		var waiting []string
		for _, it := range r.Items {
			if it.ScanStatus != ci.ScanSucceeded {
				waiting = append(waiting, it.Target()+" ("+string(it.ScanStatus)+")")
			}
		}
		if len(waiting) > 0 {
			why = "it waits for the scans of " + strings.Join(waiting, ", ")
		}
	}
	return fmt.Errorf("%w: release %s of %s is %s, not ready: %s; a bundle is built from a ready release only",
		reports.ErrConflict, r.Version, r.ProductID, r.Status, why)
}

// assembleScan is one item of the release with what the report says of
// it. projects caches the projects read by name.
func (p *Publisher) assembleScan(ctx context.Context, r reports.StoredRelease, it reports.ReleaseItem, projects map[string]ci.Project) (reports.ReleaseScan, error) {
	sc, _, err := p.ci.Scan(ctx, it.ScanID)
	if err != nil {
		return reports.ReleaseScan{}, fmt.Errorf("scan %s: %w", it.ScanID, err)
	}
	if sc.Status != ci.ScanSucceeded {
		return reports.ReleaseScan{}, fmt.Errorf("%w: scan %s is %s", reports.ErrConflict, sc.ID, sc.Status)
	}
	res, err := p.ci.Result(ctx, sc)
	if err != nil {
		return reports.ReleaseScan{}, fmt.Errorf("the result of scan %s: %w", sc.ID, err)
	}
	// As it stood when the release was cut, or when its scan finished if
	// the release waited for it.
	at := r.CreatedAt
	if sc.FinishedAt.After(at) {
		at = sc.FinishedAt
	}
	v, err := p.ci.JudgeAt(ctx, sc, res, at)
	if err != nil {
		return reports.ReleaseScan{}, fmt.Errorf("the gate of scan %s: %w", sc.ID, err)
	}
	out := reports.ReleaseScan{
		PolicyVersion: policyLabel(v.Policy),
		Result:        res,
		Gate:          v.Decision,
		Waivers:       v.Waivers,
	}
	q := HistoryQuery{From: r.CreatedAt.AddDate(0, 0, -HistoryDays), To: r.CreatedAt, Limit: MaxHistoryScans}
	if it.Kind == ci.KindImage {
		out.Image = cmp.Or(it.ImageRef, sc.ImageRef, it.Digest)
		out.Digest = it.Digest
		q.Digest, q.Repository = it.Digest, repository(out.Image)
	} else {
		proj, ok := projects[it.Project]
		if !ok {
			if proj, err = p.ci.Project(ctx, it.Project); err != nil {
				return reports.ReleaseScan{}, fmt.Errorf("project %q: %w", it.Project, err)
			}
			projects[it.Project] = proj
		}
		out.Project, out.Repository, out.Commit = it.Project, proj.RepoURL, it.Commit
		q.ProjectID = sc.ProjectID
	}
	if out.GateHistory, err = p.history(ctx, q); err != nil {
		return reports.ReleaseScan{}, fmt.Errorf("gate history: %w", err)
	}
	return out, nil
}

// history draws the gate decisions of a target from its scans in the
// query's window: a succeeded scan judged as it stood when it finished,
// a failed one failed, and one not finished by the window's end pending
// since it was created. A scan that cannot be judged any more (its
// stored summary gone) is unknown, and logged.
func (p *Publisher) history(ctx context.Context, q HistoryQuery) ([]reports.GatePoint, error) {
	scans, err := p.store.HistoryScans(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]reports.GatePoint, 0, len(scans))
	for _, sc := range scans {
		finished := !sc.FinishedAt.IsZero() && !sc.FinishedAt.After(q.To)
		pt := reports.GatePoint{At: sc.CreatedAt.UTC(), Decision: ci.Pending}
		switch {
		case finished && sc.Status == ci.ScanSucceeded:
			pt.At = sc.FinishedAt.UTC()
			v, err := p.ci.JudgeAt(ctx, sc, nil, sc.FinishedAt)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				p.log.WarnContext(ctx, "gate history: a scan cannot be judged", slog.String("scan", sc.ID), slog.Any("error", err))
				pt.Decision = ci.Unknown
				break
			}
			pt.Decision = v.Decision.Decision
		case finished && sc.Status == ci.ScanFailed:
			pt.At, pt.Decision = sc.FinishedAt.UTC(), ci.Fail
		}
		out = append(out, pt)
	}
	slices.SortStableFunc(out, func(a, b reports.GatePoint) int { return a.At.Compare(b.At) })
	return out, nil
}

// policyLabel names the policy that judged a scan, as reports print it:
// the project's policy version ("7", "default" for none), with the
// commit's policy file when it took part.
func policyLabel(gp *ci.GatePolicy) string {
	if gp == nil {
		return ""
	}
	v := "default"
	if gp.Version > 0 {
		v = strconv.Itoa(gp.Version)
	}
	switch ci.Origin(gp.Origin) {
	case ci.OriginRepository:
		return ci.RepoPolicyFile + " of the commit"
	case ci.OriginCombined:
		return v + " with " + ci.RepoPolicyFile + " of the commit"
	}
	return v
}

// repository is the repository of an image reference
// ("registry.example.com/team/app"), "" when ref is not one.
func repository(ref string) string {
	r, err := name.ParseReference(ref)
	if err != nil {
		return ""
	}
	return r.Context().Name()
}
