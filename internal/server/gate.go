package server

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/httpx"
)

// GateResponse is the answer of GET /api/v1/gate.
type GateResponse struct {
	Decision string      `json:"decision"`
	Reasons  []ci.Reason `json:"reasons"`
	Scan     string      `json:"scan,omitempty"` // URL of the scan
	// Policy says which policy decided; absent until a result is judged.
	Policy *ci.GatePolicy `json:"policy,omitempty"`
}

func (s *Server) gate(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	var (
		g   ci.ScanGate
		d   *ci.Decision
		err error
	)
	switch project, commit, img := q.Get("project"), q.Get("commit"), q.Get("image"); {
	case img != "" && project == "" && commit == "":
		g, d, err = s.ci.ImageGate(ctx, img)
	case project != "" && commit != "" && img == "":
		g, d, err = s.ci.CommitGate(ctx, project, commit)
	default:
		httpx.WriteErr(w, invalidField("give project and commit, or image"))
		return
	}
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	if d != nil { // nothing to judge: not scanned, or a tag not resolved
		s.writeGate(w, r, d, "")
		return
	}
	v, err := s.ci.Judge(ctx, g)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.writeVerdict(w, r, v, g.Scan.ID)
}

func (s *Server) writeGate(w http.ResponseWriter, r *http.Request, d *ci.Decision, scanID string) {
	s.writeVerdict(w, r, ci.Verdict{Decision: d}, scanID)
}

func (s *Server) writeVerdict(w http.ResponseWriter, r *http.Request, v ci.Verdict, scanID string) {
	d := v.Decision
	s.metrics.decisions.WithLabelValues(d.Decision, "api").Inc()
	out := GateResponse{Decision: d.Decision, Reasons: d.Reasons, Policy: v.Policy}
	if out.Reasons == nil {
		out.Reasons = []ci.Reason{}
	}
	if scanID != "" {
		out.Scan = s.scanURL(scanID)
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, out)
}

// scanURL is the link to a scan in API answers: under Config.PublicURL,
// or relative to the server when it is unset. Never built from the
// request's Host header, which the client chooses.
func (s *Server) scanURL(scanID string) string {
	return strings.TrimRight(s.cfg.PublicURL, "/") + "/api/v1/scans/" + scanID
}

// admissionGates answers the admission webhook from stored scans.
type admissionGates struct{ s *Server }

func (a admissionGates) ImageGate(ctx context.Context, img string) (*ci.Decision, error) {
	g, d, err := a.s.ci.ImageGate(ctx, img)
	if errors.Is(err, ci.ErrInvalid) {
		d, err = ci.NotScanned("image "+img+" is not a valid image reference"), nil
	}
	if err != nil {
		return nil, err
	}
	if d != nil {
		a.s.metrics.decisions.WithLabelValues(d.Decision, "admission").Inc()
		return d, nil
	}
	d, err = a.s.ci.DecideGate(ctx, g)
	if err != nil {
		return nil, err
	}
	a.s.metrics.decisions.WithLabelValues(d.Decision, "admission").Inc()
	return d, nil
}
