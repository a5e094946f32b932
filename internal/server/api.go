package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/internal/jobs"
	"github.com/vigil-sec/vigil/scanner"
	"github.com/vigil-sec/vigil/scanner/image"
	"github.com/vigil-sec/vigil/scanner/source"
)

// Limits on project fields.
const (
	maxPolicySize     = 256 << 10
	minWebhookSecret  = 16
	maxWebhookSecret  = 256
	defaultBranchName = "main"
	maxRepoURL        = 2048
	maxBranchName     = 255
	maxSchedule       = 100
)

// projectNameRE keeps names usable in webhook URLs (/hooks/github/{name}).
var projectNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// Project is a project as the API shows it. The webhook secret is never
// shown.
type Project struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	RepoURL       string    `json:"repo_url"`
	DefaultBranch string    `json:"default_branch"`
	Schedule      string    `json:"schedule,omitempty"`
	PolicyVersion int       `json:"policy_version,omitempty"`
	CreatedAt     time.Time `json:"created_at"`

	// Forge is where commit statuses go (forge.go); its token is never
	// shown.
	Forge *ProjectForge `json:"forge,omitempty"`
	// Products are the IDs of the licensing products the project ships
	// in; Production puts its default branch in their releases when a
	// release names no project.
	Products   []string `json:"products"`
	Production bool     `json:"production"`
}

type createProjectRequest struct {
	Name          string `json:"name"`
	RepoURL       string `json:"repo_url"`
	DefaultBranch string `json:"default_branch"`
	WebhookSecret string `json:"webhook_secret"`
	Schedule      string `json:"schedule"`
	Policy        string `json:"policy"` // a policy file (YAML), as `vigil scan --policy` reads
	// Forge, when given, gets commit statuses (forge.go).
	Forge *forgeRequest `json:"forge"`
}

func invalidField(format string, args ...any) *httpx.Error {
	return &httpx.Error{Status: http.StatusBadRequest, Code: httpx.CodeInvalidField, Message: fmt.Sprintf(format, args...)}
}

// checkIdentifiers applies httpx.CheckIdentifier to fields as
// {name, value, max bytes} triples, and returns the first error.
func checkIdentifiers(fields ...identField) error {
	for _, f := range fields {
		if err := httpx.CheckIdentifier(f.name, f.value, f.max); err != nil {
			return err
		}
	}
	return nil
}

type identField struct {
	name, value string
	max         int
}

func (req *createProjectRequest) validate() error {
	req.Name = strings.TrimSpace(req.Name)
	req.RepoURL = strings.TrimSpace(req.RepoURL)
	req.DefaultBranch = strings.TrimSpace(req.DefaultBranch)
	req.Schedule = strings.TrimSpace(req.Schedule)
	if err := checkIdentifiers(
		identField{"name", req.Name, 0}, // and projectNameRE
		identField{"repo_url", req.RepoURL, maxRepoURL},
		identField{"default_branch", req.DefaultBranch, maxBranchName},
		identField{"schedule", req.Schedule, maxSchedule},
	); err != nil {
		return err
	}
	switch {
	case !projectNameRE.MatchString(req.Name):
		return invalidField("name %q: want 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit", req.Name)
	case len(req.WebhookSecret) < minWebhookSecret || len(req.WebhookSecret) > maxWebhookSecret:
		return invalidField("webhook_secret: want %d to %d characters", minWebhookSecret, maxWebhookSecret)
	case len(req.Policy) > maxPolicySize:
		return invalidField("policy: at most %d bytes", maxPolicySize)
	}
	if req.DefaultBranch == "" {
		req.DefaultBranch = defaultBranchName
	}
	if err := checkProjectFields(req.RepoURL, req.DefaultBranch, req.Schedule); err != nil {
		return err
	}
	if req.Policy != "" {
		if _, err := ci.ParsePolicy("policy", []byte(req.Policy)); err != nil {
			return invalidField("%v", err)
		}
	}
	if req.Forge != nil {
		return req.Forge.validate(req.RepoURL)
	}
	return nil
}

// checkProjectFields checks a project's repo_url, default_branch and
// schedule, trimmed and through httpx.CheckIdentifier already; creating
// and updating a project check them alike.
func checkProjectFields(repoURL, defaultBranch, schedule string) error {
	switch {
	case repoURL == "":
		return invalidField("repo_url is required (https://, ssh://, git@host:path or file://)")
	case !source.IsRepoURL(repoURL) || !repoScheme(repoURL):
		return invalidField("repo_url %q: want an https://, ssh:// or git@host:path URL (http://, git:// or file:// where the server's outbound policy allows them)", repoURL)
	case strings.HasPrefix(repoURL, "-"):
		return invalidField("repo_url %q must not start with '-'", repoURL)
	}
	if err := validRepo(repoURL); err != nil {
		return invalidField("repo_url: %v", err)
	}
	switch {
	case defaultBranch == "":
		return invalidField("default_branch cannot be empty")
	case source.CheckRev(defaultBranch) != nil: // a leading '-', spaces, revision syntax
		return invalidField("default_branch %q is not a branch name", defaultBranch)
	}
	if schedule != "" {
		if _, err := jobs.ParseSchedule(schedule); err != nil {
			return invalidField("schedule: %v", err)
		}
	}
	return nil
}

// repoScheme reports whether a repo URL with a scheme has one of git's
// own network or file transports, spelt as git spells it (lower case):
// no ftp://, no remote helper; git@host:path has none. Which of them the
// server may use is its outbound policy's say (checkRepoURL): https and
// ssh by default, http, git and file only where the policy lists them.
func repoScheme(repoURL string) bool {
	scheme, _, ok := strings.Cut(repoURL, "://")
	if !ok {
		return true
	}
	switch scheme {
	case "https", "ssh", "file", "http", "git":
		return true
	}
	return false
}

func (s *Server) createProject(w http.ResponseWriter, r *http.Request) {
	var req createProjectRequest
	if err := httpx.DecodeJSON(w, r, &req, maxPolicySize+16<<10); err != nil {
		httpx.WriteErr(w, err)
		return
	}
	if err := req.validate(); err != nil {
		httpx.WriteErr(w, err)
		return
	}
	if err := s.checkProjectOutbound(&req); err != nil {
		httpx.WriteErr(w, err)
		return
	}
	spec := ci.ProjectSpec{
		Name: req.Name, RepoURL: req.RepoURL, DefaultBranch: req.DefaultBranch,
		WebhookSecret: req.WebhookSecret, Schedule: req.Schedule, Policy: req.Policy,
	}
	if req.Forge != nil {
		spec.ForgeURL, spec.ForgeToken = req.Forge.URL, req.Forge.Token
	}
	c, err := s.ci.CreateProject(r.Context(), spec)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	p := c.Project
	out := apiProject(p, c.PolicyVersion)
	if req.Forge != nil {
		out.Forge = &ProjectForge{URL: req.Forge.URL}
	}
	w.Header().Set("Location", "/api/v1/projects/"+url.PathEscape(p.Name))
	httpx.WriteJSON(w, http.StatusCreated, out)
}

func apiProject(p ci.Project, policyVersion int) Project {
	return Project{ID: p.ID, Name: p.Name, RepoURL: p.RepoURL, DefaultBranch: p.DefaultBranch,
		Schedule: p.Schedule, PolicyVersion: policyVersion, CreatedAt: p.CreatedAt,
		Products: []string{}, Production: p.Production}
}

func apiProjectSummary(p ci.ProjectSummary) Project {
	out := apiProject(p.Project, p.PolicyVersion)
	if p.Products != nil {
		out.Products = p.Products
	}
	if p.ForgeURL != "" {
		out.Forge = &ProjectForge{URL: p.ForgeURL}
	}
	return out
}

// listProjects pages through the projects, oldest first, with their
// policy versions and forges read in the same query.
func (s *Server) listProjects(w http.ResponseWriter, r *http.Request) {
	pg := ci.Page{Cursor: r.URL.Query().Get("cursor")}
	var ok bool
	if pg.Limit, ok = limitParam(w, r, ci.MaxPageLimit); !ok {
		return
	}
	ps, next, err := s.ci.ListProjects(r.Context(), pg)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	out := make([]Project, 0, len(ps))
	for _, p := range ps {
		out = append(out, apiProjectSummary(p))
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"projects": out, "next_cursor": next})
}

// getProject answers the project a create's Location points at.
func (s *Server) getProject(w http.ResponseWriter, r *http.Request) {
	p, err := s.ci.ProjectSummary(r.Context(), r.PathValue("name"))
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, apiProjectSummary(p))
}

// Scan is a scan as the API shows it. Lists leave out the findings, the
// SBOM summary and the gate.
type Scan struct {
	ID          string             `json:"id"`
	Project     string             `json:"project,omitempty"`
	Kind        string             `json:"kind"`
	Commit      string             `json:"commit,omitempty"`
	Branch      string             `json:"branch,omitempty"`
	RescanOf    string             `json:"rescan_of,omitempty"` // a scheduled rescan: the ID of the first scan
	Trigger     string             `json:"trigger"`             // "event" (push, registry, API, gate) or "schedule"
	Image       string             `json:"image,omitempty"`
	ImageDigest string             `json:"image_digest,omitempty"`
	Status      string             `json:"status"`
	Error       string             `json:"error,omitempty"`
	Attempts    int                `json:"attempts"`
	CreatedAt   time.Time          `json:"created_at"`
	StartedAt   *time.Time         `json:"started_at,omitempty"`
	FinishedAt  *time.Time         `json:"finished_at,omitempty"`
	Engines     map[string]string  `json:"engines,omitempty"`
	Timings     map[string]float64 `json:"timings,omitempty"` // seconds per phase
	Findings    []scanner.Finding  `json:"findings,omitempty"`
	SBOM        *SBOMSummary       `json:"sbom,omitempty"`
	Gate        *ci.Decision       `json:"gate,omitempty"`
	Reports     map[string]string  `json:"reports,omitempty"` // format -> download path
}

// SBOMSummary counts a scan's SBOM components.
type SBOMSummary struct {
	Components int            `json:"components"`
	ByType     map[string]int `json:"by_type"`
}

// apiScan is a scan as the API shows it; projectName is the name of its
// project ("" for an image scan).
func apiScan(sc ci.Scan, projectName string) Scan {
	out := Scan{
		ID: sc.ID, Kind: string(sc.Kind), Commit: sc.CommitSHA, Image: sc.ImageRef, ImageDigest: sc.ImageDigest,
		Status: string(sc.Status), Error: sc.Error, Attempts: sc.Attempts, CreatedAt: sc.CreatedAt,
		Engines: sc.EngineVersions, Project: projectName,
	}
	if sc.Kind == ci.KindCommit {
		out.Branch = sc.Branch
	}
	out.Trigger = "event"
	if out.RescanOf = sc.RescanOf; out.RescanOf != "" {
		out.Trigger = "schedule"
	}
	if !sc.StartedAt.IsZero() {
		out.StartedAt = &sc.StartedAt
	}
	if !sc.FinishedAt.IsZero() {
		out.FinishedAt = &sc.FinishedAt
	}
	if len(sc.Timings) > 0 {
		out.Timings = make(map[string]float64, len(sc.Timings))
		for k, v := range sc.Timings {
			out.Timings[k] = v.Seconds()
		}
	}
	return out
}

type createScanRequest struct {
	Project string `json:"project"`
	Commit  string `json:"commit"`
	// Branch is accepted and ignored: the worker finds the commit's
	// branch in the repository.
	Branch string `json:"branch"`
	Image  string `json:"image"`
}

type createScanResponse struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

func (s *Server) createScan(w http.ResponseWriter, r *http.Request) {
	var req createScanRequest
	if err := httpx.DecodeJSON(w, r, &req, 16<<10); err != nil {
		httpx.WriteErr(w, err)
		return
	}
	if err := checkIdentifiers(
		identField{"project", req.Project, 0},
		identField{"commit", req.Commit, 0},
		identField{"branch", req.Branch, maxBranchName},
		identField{"image", req.Image, 0},
	); err != nil {
		httpx.WriteErr(w, err)
		return
	}
	ctx := r.Context()
	var (
		sc      ci.Scan
		created bool
		err     error
	)
	switch {
	case req.Image != "" && (req.Project != "" || req.Commit != ""):
		httpx.WriteErr(w, invalidField("give either image, or project and commit"))
		return
	case req.Image != "":
		sc, created, err = s.enqueueImageRef(ctx, req.Image)
	case req.Project != "" && req.Commit != "":
		if err := checkCommitRequest(req.Commit, req.Branch); err != nil {
			httpx.WriteErr(w, err)
			return
		}
		sc, created, err = s.enqueueCommit(ctx, req.Project, req.Commit)
	default:
		httpx.WriteErr(w, invalidField("give either image, or project and commit"))
		return
	}
	if err != nil {
		s.writeEnqueueError(w, r, err)
		return
	}
	status := http.StatusOK // a repeat: the existing scan
	if created {
		status = http.StatusAccepted
	}
	w.Header().Set("Location", "/api/v1/scans/"+sc.ID)
	httpx.WriteJSON(w, status, createScanResponse{ID: sc.ID, Status: string(sc.Status)})
}

func (s *Server) writeEnqueueError(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpx.Error
	switch {
	case errors.As(err, &he):
		httpx.WriteErr(w, err)
	case errors.Is(err, errRegistry): // before ErrUsage: one answer whatever the remote said
		s.log.WarnContext(r.Context(), "image resolve failed", slog.Any("error", err))
		httpx.WriteError(w, http.StatusBadGateway, "IMAGE_UNRESOLVED", "the image reference could not be resolved; check that it names an image in a registry the server may reach, then retry")
	case errors.Is(err, scanner.ErrUsage):
		httpx.WriteError(w, http.StatusBadRequest, "BAD_IMAGE", scanner.UsageMessage(err))
	default:
		s.writeStoreError(w, r, err)
	}
}

var errRegistry = errors.New("registry unreachable")

// validRepo checks a repository URL as git would read it (no option, no
// remote helper), without saying the usage error's prefix.
func validRepo(repo string) error {
	if _, err := source.ParseRemote(repo); err != nil {
		return errors.New(scanner.UsageMessage(err))
	}
	return nil
}

// checkCommitRequest refuses a commit or branch that git could read as
// an option or as revision syntax.
func checkCommitRequest(commit, branch string) error {
	if err := source.CheckRev(commit); err != nil {
		return invalidField("commit: %s", scanner.UsageMessage(err))
	}
	if err := source.CheckRev(branch); err != nil {
		return invalidField("branch: %s", scanner.UsageMessage(err))
	}
	return nil
}

// enqueueCommit records the scan of a project's commit and queues its job.
func (s *Server) enqueueCommit(ctx context.Context, projectRef, commit string) (ci.Scan, bool, error) {
	p, err := s.ci.Project(ctx, projectRef)
	if err != nil {
		return ci.Scan{}, false, err
	}
	return s.ci.Enqueue(ctx, ci.NewScan{Kind: ci.KindCommit, ProjectID: p.ID, CommitSHA: commit})
}

// enqueueImageRef resolves a registry reference to its digest (manifests
// only, no layers) and records the scan of that digest.
func (s *Server) enqueueImageRef(ctx context.Context, ref string) (ci.Scan, bool, error) {
	ref = strings.TrimSpace(ref)
	if strings.HasPrefix(ref, image.OCIPrefix) || strings.HasPrefix(ref, image.ArchivePrefix) {
		return ci.Scan{}, false, invalidField("image %q: the server scans registry images only", ref)
	}
	norm, err := normalizeRef(ref)
	if err != nil {
		return ci.Scan{}, false, invalidField("image %q: %v", ref, err)
	}
	if err := s.checkRegistry(norm); err != nil {
		return ci.Scan{}, false, err
	}
	t, err := image.Resolve(ctx, norm, s.ci.ImageOptions(norm))
	if err != nil {
		// Whatever the registry answered, or the network said, the
		// caller learns only that it failed: the detail (not found,
		// refused, a timeout, the policy) would make this a port scanner.
		return ci.Scan{}, false, fmt.Errorf("%w: %v", errRegistry, err)
	}
	return s.ci.Enqueue(ctx, ci.NewScan{Kind: ci.KindImage, ImageDigest: t.Digest, ImageRef: norm})
}

// normalizeRef writes an image reference in its full form
// ("index.docker.io/library/alpine:latest"), so that lookups by reference
// match however it was written.
func normalizeRef(ref string) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", err
	}
	return r.Name(), nil
}

func (s *Server) getScan(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sc, projectName, err := s.ci.Scan(ctx, r.PathValue("id"))
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	out := apiScan(sc, projectName)
	if sc.Status == ci.ScanSucceeded {
		a, err := s.ci.Artifacts(ctx, sc)
		if err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		res, err := s.ci.ResultOf(ctx, sc, a)
		if err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		out.Findings = res.Findings
		if out.Findings == nil {
			out.Findings = []scanner.Finding{}
		}
		if res.SBOM != nil {
			sum := &SBOMSummary{Components: len(res.SBOM.Components), ByType: map[string]int{}}
			for _, c := range res.SBOM.Components {
				sum.ByType[c.Type]++
			}
			out.SBOM = sum
		}
		out.Reports = map[string]string{}
		for _, f := range reportFormats {
			if f.key(a) != "" {
				out.Reports[f.name] = "/api/v1/scans/" + sc.ID + "/" + f.name
			}
		}
	}
	d, err := s.ci.Decide(ctx, sc)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	out.Gate = d
	httpx.WriteJSON(w, http.StatusOK, out)
}

// reportFormats are the downloads of a succeeded scan.
var reportFormats = []struct {
	name, contentType string
	key               func(ci.ScanArtifacts) string
}{
	{"sarif", "application/sarif+json", func(a ci.ScanArtifacts) string { return a.SARIF }},
	{"cyclonedx", "application/vnd.cyclonedx+json; version=1.6", func(a ci.ScanArtifacts) string { return a.CycloneDX }},
	{"spdx", "application/spdx+json", func(a ci.ScanArtifacts) string { return a.SPDX }},
}

func (s *Server) downloadReport(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	i := -1
	for j, f := range reportFormats {
		if f.name == r.PathValue("format") {
			i = j
		}
	}
	if i < 0 {
		httpx.WriteError(w, http.StatusNotFound, "NOT_FOUND", "no such report; the formats are sarif, cyclonedx and spdx")
		return
	}
	sc, _, err := s.ci.Scan(ctx, r.PathValue("id"))
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	if sc.Status != ci.ScanSucceeded {
		httpx.WriteError(w, http.StatusConflict, "NOT_FINISHED", fmt.Sprintf("scan %s is %s; reports exist once it has succeeded", sc.ID, sc.Status))
		return
	}
	a, err := s.ci.Artifacts(ctx, sc)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	f := reportFormats[i]
	key := f.key(a)
	if key == "" {
		httpx.WriteError(w, http.StatusNotFound, "NO_SBOM", "this scan has no SBOM: the sbom engine did not run")
		return
	}
	rc, size, err := s.ci.OpenBlob(ctx, key)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	defer rc.Close()
	if size >= 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	}
	w.Header().Set("Content-Type", f.contentType)
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.%s.json"`, sc.ID, f.name))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if _, err := io.Copy(w, rc); err != nil {
		s.log.WarnContext(ctx, "report download cut off", slog.Any("error", err))
	}
}

func (s *Server) listScans(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	f := ci.ScanFilter{Cursor: q.Get("cursor"), Status: ci.ScanStatus(q.Get("status"))}
	var ok bool
	if f.Limit, ok = limitParam(w, r, ci.MaxScanLimit); !ok {
		return
	}
	switch f.Status {
	case "", ci.ScanQueued, ci.ScanRunning, ci.ScanSucceeded, ci.ScanFailed:
	default:
		httpx.WriteErr(w, invalidField("status %q: want queued, running, succeeded or failed", f.Status))
		return
	}
	if p := q.Get("project"); p != "" {
		proj, err := s.ci.Project(ctx, p)
		if err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		f.ProjectID = proj.ID
	}
	scans, next, names, err := s.ci.ListScans(ctx, f)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	out := make([]Scan, 0, len(scans))
	for _, sc := range scans {
		out = append(out, apiScan(sc, names[sc.ProjectID]))
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"scans": out, "next_cursor": next})
}
