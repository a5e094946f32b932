package server

import (
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/licensing/oauth"
)

// Findings tracked across commits and waivers made through the API.
//
// Every succeeded scan gets a gate summary (what the gate evaluates, so a
// gate query never reads the result blob). A succeeded first scan of a
// project's commit is also folded into the project's tracked findings
// (store.RecordFindings): first seen, last seen, fixed in. Scheduled
// rescans are not: they scan an old commit again with newer rules, so
// what they see says nothing about when code changed, and a finding
// they alone found would read as first seen in a commit long after the
// one that brought it. Findings they reveal are tracked from the next
// commit scan on, which runs the same rules.

// registerFindings mounts findings tracked across commits and the waivers API.
func (s *Server) registerFindings(mux *http.ServeMux) {
	api := func(pattern, scope string, h http.HandlerFunc) {
		mux.Handle(pattern, s.oauth.Middleware("")(requireScope(scope, h)))
	}
	api("GET /api/v1/findings", ScopeScansRead, s.listFindings)
	api("POST /api/v1/waivers", ScopeProjectsAdmin, s.createWaiver)
	api("GET /api/v1/waivers", ScopeScansRead, s.listWaivers)
	api("GET /api/v1/waivers/{id}", ScopeScansRead, s.getWaiver)
	api("DELETE /api/v1/waivers/{id}", ScopeProjectsAdmin, s.deleteWaiver)
}

// Finding is a tracked finding as the API shows it.
type Finding struct {
	ID          string    `json:"id"`
	Project     string    `json:"project"`
	Fingerprint string    `json:"fingerprint"`
	RuleID      string    `json:"rule_id"`
	Severity    string    `json:"severity"`
	Confidence  string    `json:"confidence"`
	File        string    `json:"file"`
	Line        int       `json:"line"`
	Message     string    `json:"message"`
	State       string    `json:"state"`
	FirstSeen   Sighting  `json:"first_seen"`
	LastSeen    Sighting  `json:"last_seen"`
	FixedIn     *Sighting `json:"fixed_in,omitempty"`
}

// Sighting is a scan in which a finding was seen, or fixed.
type Sighting struct {
	Scan   string    `json:"scan"`
	Commit string    `json:"commit"`
	At     time.Time `json:"at"`
}

func apiSighting(s ci.Sighting) Sighting {
	return Sighting{Scan: s.ScanID, Commit: s.Commit, At: s.At}
}

func (s *Server) listFindings(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	ref := q.Get("project")
	if ref == "" {
		httpx.WriteErr(w, invalidField("project is required: the name or ID of a project"))
		return
	}
	limit, ok := limitParam(w, r, ci.MaxFindingLimit)
	if !ok {
		return
	}
	switch state := q.Get("state"); state {
	case "", ci.FindingOpen, ci.FindingFixed, ci.FindingWaived:
	default:
		httpx.WriteErr(w, invalidField("state %q: want open, fixed or waived", state))
		return
	}
	p, err := s.ci.Project(ctx, ref)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	found, next, err := s.ci.Findings(ctx, p, q.Get("state"), limit, q.Get("cursor"))
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	out := make([]Finding, 0, len(found))
	for _, f := range found {
		out = append(out, apiFinding(f.TrackedFinding, p.Name, f.State))
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"findings": out, "next_cursor": next})
}

func apiFinding(f ci.TrackedFinding, project, state string) Finding {
	out := Finding{
		ID: f.ID, Project: project, Fingerprint: f.Fingerprint, RuleID: f.RuleID, Severity: f.Severity,
		Confidence: f.Confidence, File: f.File, Line: f.Line, Message: f.Message, State: state,
		FirstSeen: apiSighting(f.First), LastSeen: apiSighting(f.Last),
	}
	if f.Fixed != nil {
		fx := apiSighting(*f.Fixed)
		out.FixedIn = &fx
	}
	return out
}

// Limits on waiver fields.
const (
	maxWaiverOwner  = 200
	maxWaiverReason = 2000
	maxWaiverPath   = 500
	maxWaiverBody   = 16 << 10
)

var (
	waiverRuleRE        = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$`)
	waiverFingerprintRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
)

// Waiver is a waiver as the API shows it.
type Waiver struct {
	ID          string    `json:"id"`
	Project     string    `json:"project"`
	Rule        string    `json:"rule,omitempty"`
	Path        string    `json:"path,omitempty"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	Owner       string    `json:"owner"`
	Reason      string    `json:"reason"`
	Expires     string    `json:"expires"` // YYYY-MM-DD, the last day it applies (UTC)
	Active      bool      `json:"active"`
	CreatedBy   string    `json:"created_by,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

func apiWaiver(w ci.ProjectWaiver, project string, at time.Time) Waiver {
	cw := w.Waiver()
	return Waiver{
		ID: w.ID, Project: project, Rule: w.Rule, Path: w.Path, Fingerprint: w.Fingerprint, Owner: w.Owner,
		Reason: w.Reason, Expires: w.Expires.Format(time.DateOnly), Active: cw.Active(at), CreatedBy: w.CreatedBy,
		CreatedAt: w.CreatedAt,
	}
}

type createWaiverRequest struct {
	Project     string `json:"project"`
	Rule        string `json:"rule"`
	Path        string `json:"path"`
	Fingerprint string `json:"fingerprint"`
	Owner       string `json:"owner"`
	Reason      string `json:"reason"`
	Expires     string `json:"expires"` // YYYY-MM-DD or RFC 3339
}

// validate checks the request and returns the expiry date. A time in
// RFC 3339 counts as its UTC date: like a waiver of a policy file, the
// waiver applies through the end of that day.
func (req *createWaiverRequest) validate(at time.Time) (time.Time, error) {
	for _, f := range []*string{&req.Project, &req.Rule, &req.Path, &req.Fingerprint, &req.Owner, &req.Reason, &req.Expires} {
		*f = strings.TrimSpace(*f)
	}
	checkText := func(field, v string, maxLen int) error {
		switch {
		case v == "":
			return invalidField("%s is required", field)
		case !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 && r != '\n' && r != '\t' }):
			return invalidField("%s: want printable text", field)
		case utf8.RuneCountInString(v) > maxLen:
			return invalidField("%s: at most %d characters", field, maxLen)
		}
		return nil
	}
	if err := checkIdentifiers(identField{"project", req.Project, 0}, identField{"path", req.Path, 0}, identField{"owner", req.Owner, 0}); err != nil {
		return time.Time{}, err
	}
	switch {
	case req.Project == "":
		return time.Time{}, invalidField("project is required: the name or ID of a project")
	case req.Rule == "" && req.Fingerprint == "":
		return time.Time{}, invalidField("rule or fingerprint is required: a waiver never covers every finding")
	case req.Rule != "" && !waiverRuleRE.MatchString(req.Rule):
		return time.Time{}, invalidField("rule %q: want a rule ID such as G404 (letters, digits, '.', '_', ':', '/', '-'; at most 100)", req.Rule)
	case req.Fingerprint != "" && !waiverFingerprintRE.MatchString(req.Fingerprint):
		return time.Time{}, invalidField("fingerprint %q: want the fingerprint of a finding (letters, digits, '.', '_', ':', '-'; at most 128)", req.Fingerprint)
	case len(req.Path) > maxWaiverPath:
		return time.Time{}, invalidField("path: at most %d bytes", maxWaiverPath)
	case req.Path != "" && !doublestar.ValidatePattern(req.Path):
		return time.Time{}, invalidField("path %q: not a valid glob", req.Path)
	}
	if err := checkText("owner", req.Owner, maxWaiverOwner); err != nil {
		return time.Time{}, err
	}
	if err := checkText("reason", req.Reason, maxWaiverReason); err != nil {
		return time.Time{}, err
	}
	if req.Expires == "" {
		return time.Time{}, invalidField("expires is required: the last day the waiver applies, YYYY-MM-DD or RFC 3339")
	}
	exp, err := time.Parse(time.DateOnly, req.Expires)
	if err != nil {
		t, err2 := time.Parse(time.RFC3339, req.Expires)
		if err2 != nil {
			return time.Time{}, invalidField("expires %q: want a date (YYYY-MM-DD) or an RFC 3339 time", req.Expires)
		}
		y, m, d := t.UTC().Date()
		exp = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	}
	if w := (ci.Waiver{Expires: exp}); !w.Active(at) {
		return time.Time{}, invalidField("expires %s is in the past: a waiver must apply at least through today (UTC)", exp.Format(time.DateOnly))
	}
	return exp, nil
}

func (s *Server) createWaiver(w http.ResponseWriter, r *http.Request) {
	var req createWaiverRequest
	if err := httpx.DecodeJSON(w, r, &req, maxWaiverBody); err != nil {
		httpx.WriteErr(w, err)
		return
	}
	at := now()
	exp, err := req.validate(at)
	if err != nil {
		httpx.WriteErr(w, err)
		return
	}
	ctx := r.Context()
	p, err := s.ci.Project(ctx, req.Project)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	var by string
	if c, ok := oauth.ClaimsFromContext(ctx); ok {
		by = c.ClientID
	}
	sw, err := s.ci.CreateWaiver(ctx, ci.ProjectWaiver{
		ProjectID: p.ID, Rule: req.Rule, Path: req.Path, Fingerprint: req.Fingerprint,
		Owner: req.Owner, Reason: req.Reason, Expires: exp, CreatedBy: by,
	})
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/waivers/"+sw.ID)
	httpx.WriteJSON(w, http.StatusCreated, apiWaiver(sw, p.Name, at))
}

func (s *Server) listWaivers(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ref := r.URL.Query().Get("project")
	if ref == "" {
		httpx.WriteErr(w, invalidField("project is required: the name or ID of a project"))
		return
	}
	pg := ci.Page{Cursor: r.URL.Query().Get("cursor")}
	var ok bool
	if pg.Limit, ok = limitParam(w, r, ci.MaxPageLimit); !ok {
		return
	}
	p, err := s.ci.Project(ctx, ref)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	ws, next, err := s.ci.ListWaivers(ctx, p.ID, pg)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	at := now()
	out := make([]Waiver, 0, len(ws))
	for _, sw := range ws {
		out = append(out, apiWaiver(sw, p.Name, at))
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"waivers": out, "next_cursor": next})
}

func (s *Server) getWaiver(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sw, name, err := s.ci.Waiver(ctx, r.PathValue("id"))
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, apiWaiver(sw, name, now()))
}

func (s *Server) deleteWaiver(w http.ResponseWriter, r *http.Request) {
	if err := s.ci.DeleteWaiver(r.Context(), r.PathValue("id")); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
