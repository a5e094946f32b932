package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/internal/store"
)

// Reason codes of the decisions the server makes before a result exists.
const (
	CodeScanPending = "SCAN_PENDING" // queued or running
	CodeScanFailed  = "SCAN_FAILED"  // the scan itself failed
	CodeNotScanned  = "NOT_SCANNED"  // no scan of the commit or image exists
	CodeBadPolicy   = "BAD_POLICY"   // the stored policy does not parse
)

// GateResponse is the answer of GET /api/v1/gate.
type GateResponse struct {
	Decision string      `json:"decision"`
	Reasons  []ci.Reason `json:"reasons"`
	Scan     string      `json:"scan,omitempty"` // URL of the scan
}

func (s *Server) gate(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	var (
		sc  store.Scan
		err error
		d   *ci.Decision
	)
	switch project, commit, img := q.Get("project"), q.Get("commit"), q.Get("image"); {
	case img != "" && project == "" && commit == "":
		sc, err = s.findImageScan(ctx, img)
		if errors.Is(err, store.ErrNotFound) {
			s.writeGate(w, r, notScanned("image "+img+" has not been scanned; POST it to /api/v1/scans"), "")
			return
		}
	case project != "" && commit != "" && img == "":
		var p store.Project
		if p, err = s.project(ctx, project); err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		sc, err = s.db.FindCommitScan(ctx, p.ID, commit)
		if errors.Is(err, store.ErrNotFound) {
			// Nothing to judge yet: queue the scan so that asking again
			// gets an answer.
			sc, _, err = s.enqueue(ctx, store.NewScan{Kind: store.KindCommit, ProjectID: p.ID, CommitSHA: commit}, "")
			if err != nil {
				s.writeStoreError(w, r, err)
				return
			}
			s.writeGate(w, r, notScanned(fmt.Sprintf("commit %s of %s had not been scanned; a scan is queued, ask again later", sc.CommitSHA, p.Name)), sc.ID)
			return
		}
	default:
		httpx.WriteErr(w, invalidField("give project and commit, or image"))
		return
	}
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	if d, err = s.decide(ctx, sc); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.writeGate(w, r, d, sc.ID)
}

func notScanned(msg string) *ci.Decision {
	return &ci.Decision{Decision: ci.Unknown, Reasons: []ci.Reason{{Code: CodeNotScanned, Message: msg}}}
}

func (s *Server) writeGate(w http.ResponseWriter, r *http.Request, d *ci.Decision, scanID string) {
	s.metrics.decisions.WithLabelValues(d.Decision, "api").Inc()
	out := GateResponse{Decision: d.Decision, Reasons: d.Reasons}
	if out.Reasons == nil {
		out.Reasons = []ci.Reason{}
	}
	if scanID != "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		out.Scan = scheme + "://" + r.Host + "/api/v1/scans/" + scanID
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, out)
}

// findImageScan finds the scan of an image named by digest ("sha256:…"),
// by digest reference, or by the tag reference it was enqueued with. It
// reads the store only: a tag is not resolved against its registry.
func (s *Server) findImageScan(ctx context.Context, img string) (store.Scan, error) {
	img = strings.TrimSpace(img)
	if strings.HasPrefix(img, "sha256:") || strings.HasPrefix(img, "sha512:") {
		return s.db.FindImageScan(ctx, img)
	}
	ref, err := name.ParseReference(img)
	if err != nil {
		return store.Scan{}, fmt.Errorf("%w: image %q: %v", store.ErrInvalid, img, err)
	}
	if d, ok := ref.(name.Digest); ok {
		return s.db.FindImageScan(ctx, d.DigestStr())
	}
	return s.db.LatestImageScanByRef(ctx, ref.Name())
}

// decide is the gate decision of a scan: pending until it finishes, fail
// when it failed, else the evaluation of its result with the project's
// latest policy and, for a commit off the default branch, the default
// branch's latest succeeded scan as baseline.
func (s *Server) decide(ctx context.Context, sc store.Scan) (*ci.Decision, error) {
	switch sc.Status {
	case store.Queued, store.Running:
		return &ci.Decision{Decision: ci.Pending, Reasons: []ci.Reason{{
			Code: CodeScanPending, Message: fmt.Sprintf("the scan is %s; ask again when it has finished", sc.Status),
		}}}, nil
	case store.Failed:
		return &ci.Decision{Decision: ci.Fail, Reasons: []ci.Reason{{
			Code: CodeScanFailed, Message: "the scan failed: " + sc.Error,
		}}}, nil
	}
	res, err := s.loadResult(sc)
	if err != nil {
		return nil, err
	}
	pol := ci.DefaultPolicy()
	var base *ci.Baseline
	if sc.ProjectID != "" {
		p, err := s.db.GetProject(ctx, sc.ProjectID)
		if err != nil {
			return nil, err
		}
		stored, err := s.db.GetPolicy(ctx, p.ID, 0)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return nil, err
		default:
			if pol, err = ci.ParsePolicy(fmt.Sprintf("policy v%d of %s", stored.Version, p.Name), []byte(stored.Body)); err != nil {
				return &ci.Decision{Decision: ci.Fail, Reasons: []ci.Reason{{Code: CodeBadPolicy, Message: err.Error()}}}, nil
			}
		}
		if sc.Kind == store.KindCommit {
			if base, err = s.baseline(ctx, p, sc); err != nil {
				return nil, err
			}
		}
	}
	return ci.Evaluate(res, pol, base, now()), nil
}

// baseline is the findings of the default branch's latest succeeded scan,
// for a commit scan that is not itself on the default branch; nil when
// there is none.
func (s *Server) baseline(ctx context.Context, p store.Project, sc store.Scan) (*ci.Baseline, error) {
	branch, err := s.db.ScanBranch(ctx, sc.ID)
	if err != nil {
		return nil, err
	}
	if p.DefaultBranch == "" || branch == p.DefaultBranch {
		return nil, nil
	}
	bs, err := s.db.LatestBranchScan(ctx, p.ID, p.DefaultBranch, sc.CommitSHA)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	res, err := s.loadResult(bs)
	if err != nil {
		return nil, err
	}
	fps := make([]string, 0, len(res.Findings))
	for _, f := range res.Findings {
		fps = append(fps, f.Fingerprint)
	}
	b := ci.NewBaseline(fps...)
	b.Source = fmt.Sprintf("scan %s of %s@%s", bs.ID, p.DefaultBranch, bs.CommitSHA)
	return b, nil
}

// admissionGates answers the admission webhook from stored scans.
type admissionGates struct{ s *Server }

func (a admissionGates) ImageGate(ctx context.Context, img string) (*ci.Decision, error) {
	sc, err := a.s.findImageScan(ctx, img)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) {
		a.s.metrics.decisions.WithLabelValues(ci.Unknown, "admission").Inc()
		return notScanned("image " + img + " has not been scanned"), nil
	}
	if err != nil {
		return nil, err
	}
	d, err := a.s.decide(ctx, sc)
	if err != nil {
		return nil, err
	}
	a.s.metrics.decisions.WithLabelValues(d.Decision, "admission").Inc()
	return d, nil
}
