package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/scanner"
	"github.com/vigil-sec/vigil/scanner/image"
)

// Reason codes of the decisions the server makes before a result exists.
const (
	CodeScanPending = "SCAN_PENDING" // queued or running
	CodeScanFailed  = "SCAN_FAILED"  // the scan itself failed
	CodeNotScanned  = "NOT_SCANNED"  // no scan of the commit or image exists
	CodeBadPolicy   = "BAD_POLICY"   // the stored policy does not parse
	// CodeTagUnresolved: an image tag could not be resolved to its digest
	// (an unreachable registry, an unknown tag); the gate is unknown.
	CodeTagUnresolved = "TAG_UNRESOLVED"
)

// GateResponse is the answer of GET /api/v1/gate.
type GateResponse struct {
	Decision string      `json:"decision"`
	Reasons  []ci.Reason `json:"reasons"`
	Scan     string      `json:"scan,omitempty"` // URL of the scan
	// Policy says which policy decided; absent until a result is judged.
	Policy *GatePolicy `json:"policy,omitempty"`
}

// GatePolicy says which policy decided a gate (see ci.Combine).
type GatePolicy struct {
	// Origin is "server" (the project's policy alone), "repository" (the
	// commit's policy file as is) or "combined".
	Origin string `json:"origin"`
	// Version is the project's policy version, 0 for none (the defaults).
	Version int `json:"version"`
	// RepositoryFile and RepositorySHA256 name the commit's policy file
	// that took part, with the SHA-256 of its content.
	RepositoryFile   string `json:"repository_file,omitempty"`
	RepositorySHA256 string `json:"repository_sha256,omitempty"`
}

// verdict is a decision with the policy that made it (nil before a
// result is judged).
type verdict struct {
	d      *ci.Decision
	policy *GatePolicy
}

func (s *Server) gate(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	var (
		g   ci.ScanGate
		err error
	)
	switch project, commit, img := q.Get("project"), q.Get("commit"), q.Get("image"); {
	case img != "" && project == "" && commit == "":
		var d *ci.Decision
		if g, d, err = s.findImageGate(ctx, img); err == nil && d != nil {
			s.writeGate(w, r, d, "")
			return
		}
	case project != "" && commit != "" && img == "":
		// The common case in one query; a project named by ID, or a
		// commit not scanned yet, take the longer way.
		g, err = s.db.CommitScanGate(ctx, project, commit)
		if !errors.Is(err, store.ErrNotFound) {
			break
		}
		var p ci.Project
		if p, err = s.project(ctx, project); err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		var sc ci.Scan
		sc, err = s.db.FindCommitScan(ctx, p.ID, commit)
		if errors.Is(err, store.ErrNotFound) {
			// Nothing to judge yet. Reading never starts work (gate:read
			// must not make the server clone): a push webhook or a
			// scans:write client queues the scan.
			s.writeGate(w, r, notScanned(fmt.Sprintf("commit %s of %s has not been scanned; push it, or POST it to /api/v1/scans, and ask again",
				strings.ToLower(strings.TrimSpace(commit)), p.Name)), "")
			return
		}
		if err == nil {
			g.Scan, g.Project = sc, p
			g.State, err = s.db.GateState(ctx, sc.ID)
		}
	default:
		httpx.WriteErr(w, invalidField("give project and commit, or image"))
		return
	}
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	v, err := s.judge(ctx, g)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.writeVerdict(w, r, v, g.Scan.ID)
}

func notScanned(msg string) *ci.Decision {
	return &ci.Decision{Decision: ci.Unknown, Reasons: []ci.Reason{{Code: CodeNotScanned, Message: msg}}}
}

func (s *Server) writeGate(w http.ResponseWriter, r *http.Request, d *ci.Decision, scanID string) {
	s.writeVerdict(w, r, verdict{d: d}, scanID)
}

func (s *Server) writeVerdict(w http.ResponseWriter, r *http.Request, v verdict, scanID string) {
	d := v.d
	s.metrics.decisions.WithLabelValues(d.Decision, "api").Inc()
	out := GateResponse{Decision: d.Decision, Reasons: d.Reasons, Policy: v.policy}
	if out.Reasons == nil {
		out.Reasons = []ci.Reason{}
	}
	if scanID != "" {
		out.Scan = s.scanURL(scanID)
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, out)
}

// tagResolveTimeout bounds the registry lookups that resolve a tag to its
// digest for one gate query; the admission webhook's own deadline
// (admission.DefaultLookupTimeout) is longer.
const tagResolveTimeout = 2 * time.Second

// scanURL is the link to a scan in API answers: under Config.PublicURL,
// or relative to the server when it is unset. Never built from the
// request's Host header, which the client chooses.
func (s *Server) scanURL(scanID string) string {
	return strings.TrimRight(s.cfg.PublicURL, "/") + "/api/v1/scans/" + scanID
}

// findImageGate finds the scan that decides the gate of an image named by
// digest ("sha256:…"), by digest reference or by tag, with what its gate
// depends on. A digest, and the digest of a reference that has one, are
// taken as they are. A tag is resolved against its registry, at every
// query (nothing is cached, so an image pushed again under the same tag
// is judged by its new digest at once): the scans the store holds by tag
// say what the tag named then, not now.
//
// When no scan decides, the decision returned is the answer (unknown):
// the digest has not been scanned, or the tag could not be resolved
// (fail closed). It reads the store and the registry only: it never
// queues a scan.
func (s *Server) findImageGate(ctx context.Context, img string) (ci.ScanGate, *ci.Decision, error) {
	img = strings.TrimSpace(img)
	if strings.HasPrefix(img, "sha256:") || strings.HasPrefix(img, "sha512:") {
		g, err := s.db.ImageScanGate(ctx, img)
		if errors.Is(err, store.ErrNotFound) {
			return g, notScanned("image " + img + " has not been scanned; POST it to /api/v1/scans"), nil
		}
		return g, nil, err
	}
	ref, err := name.ParseReference(img)
	if err != nil {
		return ci.ScanGate{}, nil, fmt.Errorf("%w: image %q: %v", store.ErrInvalid, img, err)
	}
	if d, ok := ref.(name.Digest); ok {
		g, err := s.db.ImageScanGate(ctx, d.DigestStr())
		if errors.Is(err, store.ErrNotFound) {
			return g, notScanned("image " + img + " has not been scanned; POST it to /api/v1/scans"), nil
		}
		return g, nil, err
	}
	digests, err := s.resolveTag(ctx, ref)
	if err != nil {
		s.log.WarnContext(ctx, "gate: tag not resolved", slog.String("image", ref.Name()), slog.Any("error", err))
		return ci.ScanGate{}, &ci.Decision{Decision: ci.Unknown, Reasons: []ci.Reason{{
			Code: CodeTagUnresolved,
			Message: fmt.Sprintf("image %s: the tag could not be resolved to its current digest at its registry; "+
				"an image is judged by digest: retry, or give a digest reference", ref.Name()),
		}}}, nil
	}
	for _, d := range digests {
		g, err := s.db.ImageScanGate(ctx, d)
		if !errors.Is(err, store.ErrNotFound) {
			return g, nil, err
		}
	}
	return ci.ScanGate{}, notScanned(fmt.Sprintf("image %s now names %s, which has not been scanned; POST it to /api/v1/scans",
		ref.Name(), digests[len(digests)-1])), nil
}

// resolveTag asks the tag's registry which digest it names now: the
// digest of the manifest (HEAD), and for an index also the digest of the
// image the scans pick from it (image.Resolve), which is what a scan
// enqueued by tag records. The first is tried first.
func (s *Server) resolveTag(ctx context.Context, ref name.Reference) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, tagResolveTimeout)
	defer cancel()
	opts := s.imageOptions(ref.Name())
	if opts.Insecure {
		r, err := name.ParseReference(ref.Name(), name.Insecure)
		if err != nil {
			return nil, err
		}
		ref = r
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
	if opts.Transport != nil {
		ropts = append(ropts, remote.WithTransport(opts.Transport))
	}
	desc, err := remote.Head(ref, ropts...)
	if err != nil {
		return nil, err
	}
	digests := []string{desc.Digest.String()}
	if desc.MediaType.IsIndex() {
		// Pinned to the digest just read, so both name the same push.
		t, err := image.Resolve(ctx, ref.Context().Digest(desc.Digest.String()).String(), opts)
		if err != nil {
			return nil, err
		}
		if t.Digest != digests[0] {
			digests = append(digests, t.Digest)
		}
	}
	return digests, nil
}

// decide is the gate decision of a scan: pending until it finishes, fail
// when it failed, else the evaluation of its result with the project's
// latest policy, the project's waivers (those of the policy and those
// made through the API) and, for a commit off the default branch, the
// default branch's latest succeeded scan as baseline.
//
// It reads the scan's gate summary, not its result blob, and caches the
// decision under everything it depends on (store.GateState): the cache
// is never stale, in this process or any other, because every query
// reads that state first, with the scan (store.CommitScanGate and
// ImageScanGate; GateState here). A cached decision also lapses when the
// first of the waivers it used expires.
func (s *Server) decide(ctx context.Context, sc ci.Scan) (*ci.Decision, error) {
	if sc.Status != ci.ScanSucceeded {
		return s.decideGate(ctx, ci.ScanGate{Scan: sc})
	}
	g := ci.ScanGate{Scan: sc}
	if sc.ProjectID != "" {
		var err error
		if g.Project, err = s.db.GetProject(ctx, sc.ProjectID); err != nil {
			return nil, err
		}
	}
	var err error
	if g.State, err = s.db.GateState(ctx, sc.ID); err != nil {
		return nil, err
	}
	return s.decideGate(ctx, g)
}

// decideGate is decide for a scan read with its gate state.
func (s *Server) decideGate(ctx context.Context, g ci.ScanGate) (*ci.Decision, error) {
	v, err := s.judge(ctx, g)
	return v.d, err
}

// judge is decideGate with the policy that decided.
func (s *Server) judge(ctx context.Context, g ci.ScanGate) (verdict, error) {
	sc, p, st := g.Scan, g.Project, g.State
	switch sc.Status {
	case ci.ScanQueued, ci.ScanRunning:
		return verdict{d: &ci.Decision{Decision: ci.Pending, Reasons: []ci.Reason{{
			Code: CodeScanPending, Message: fmt.Sprintf("the scan is %s; ask again when it has finished", sc.Status),
		}}}}, nil
	case ci.ScanFailed:
		return verdict{d: &ci.Decision{Decision: ci.Fail, Reasons: []ci.Reason{{
			Code: CodeScanFailed, Message: "the scan failed: " + sc.Error,
		}}}}, nil
	}
	// The baseline applies to commit scans off the default branch only
	// (image scans are read without their project: none).
	if sc.Kind != ci.KindCommit || p.DefaultBranch == "" || st.Branch == p.DefaultBranch {
		st.BaselineScanID = ""
	}
	at := now()
	key := gateKey{scan: sc.ID, state: st}
	if v, ok := s.gates.get(key, at); ok {
		return v, nil
	}
	v, until, err := s.evaluate(ctx, sc, p, st, at)
	if err != nil {
		return verdict{}, err
	}
	if until.After(at) {
		s.gates.put(key, v, until)
	}
	return v, nil
}

// evaluate decides the gate of a succeeded scan from its summary, and
// says until when the decision holds (the end of the first active
// waiver's last day).
//
// The policy is the project's latest version combined, for a commit,
// with the policy file the commit carries (ci.Combine); a file that
// cannot be used fails the gate naming it, as a bad project policy does.
// The file is the scan's, so the cache key (the scan and the project's
// policy version) covers it.
func (s *Server) evaluate(ctx context.Context, sc ci.Scan, p ci.Project, st ci.GateState, at time.Time) (verdict, time.Time, error) {
	sum, err := s.gateSummary(ctx, sc)
	if err != nil {
		return verdict{}, time.Time{}, err
	}
	if p.ID == "" && sc.ProjectID != "" {
		if p, err = s.db.GetProject(ctx, sc.ProjectID); err != nil {
			return verdict{}, time.Time{}, err
		}
	}
	badPolicy := func(err error) (verdict, time.Time, error) {
		return verdict{d: &ci.Decision{Decision: ci.Fail, Reasons: []ci.Reason{{Code: CodeBadPolicy, Message: err.Error()}}}}, time.Time{}, nil
	}
	var (
		serverPol  *ci.Policy
		apiWaivers []ci.ProjectWaiver
	)
	if p.ID != "" {
		if st.PolicyVersion > 0 {
			stored, err := s.db.GetPolicy(ctx, p.ID, st.PolicyVersion)
			if err != nil {
				return verdict{}, time.Time{}, err
			}
			if serverPol, err = ci.ParsePolicy(fmt.Sprintf("policy v%d of %s", stored.Version, p.Name), []byte(stored.Body)); err != nil {
				return badPolicy(err)
			}
		}
		if st.WaiverVersion > 0 {
			if apiWaivers, err = s.db.ListWaivers(ctx, p.ID); err != nil {
				return verdict{}, time.Time{}, err
			}
		}
	}
	info := &GatePolicy{Version: st.PolicyVersion}
	var repoPol *ci.Policy
	if sc.Kind == ci.KindCommit && (serverPol == nil || !serverPol.Repository.Ignore) {
		if repoPol, err = sum.Repo.parse(sc.CommitSHA); err != nil {
			return badPolicy(err)
		}
	}
	pol, origin := ci.Combine(serverPol, repoPol)
	info.Origin = string(origin)
	if origin != ci.OriginServer {
		info.RepositoryFile, info.RepositorySHA256 = repoPolicyName(sc.CommitSHA), sum.Repo.SHA256
	}
	nPolicy := len(pol.Waivers)
	for _, w := range apiWaivers {
		pol.Waivers = append(pol.Waivers, ciWaiver(w))
	}
	var base *ci.Baseline
	if st.BaselineScanID != "" {
		bs, err := s.db.GetScan(ctx, st.BaselineScanID)
		if err != nil {
			return verdict{}, time.Time{}, err
		}
		bsum, err := s.gateSummary(ctx, bs)
		if err != nil {
			return verdict{}, time.Time{}, err
		}
		fps := make([]string, 0, len(bsum.Findings))
		for _, f := range bsum.Findings {
			fps = append(fps, f.Fingerprint)
		}
		base = ci.NewBaseline(fps...)
		base.Source = fmt.Sprintf("scan %s of %s@%s", bs.ID, p.DefaultBranch, bs.CommitSHA)
	}
	d := ci.Evaluate(sum.result(), pol, base, at)
	nameAPIWaivers(d, nPolicy, apiWaivers)

	until := at.Add(maxGateCacheAge)
	for i := range pol.Waivers {
		if w := &pol.Waivers[i]; w.Active(at) {
			y, m, day := w.Expires.UTC().Date()
			if end := time.Date(y, m, day+1, 0, 0, 0, 0, time.UTC); end.Before(until) {
				until = end
			}
		}
	}
	return verdict{d: d, policy: info}, until, nil
}

// ciWaiver is a waiver of the API as the gate applies it.
func ciWaiver(w ci.ProjectWaiver) ci.Waiver {
	return ci.Waiver{Rule: w.Rule, Path: w.Path, Fingerprint: w.Fingerprint, Reason: w.Reason, Owner: w.Owner, Expires: w.Expires}
}

// nameAPIWaivers makes the reasons name a waiver of the API by its ID
// ("waiver 0192…") where ci.Evaluate, which knows only the policy's list,
// calls it by its index after the policy's own ("waivers[3]").
func nameAPIWaivers(d *ci.Decision, nPolicy int, ws []ci.ProjectWaiver) {
	if len(ws) == 0 {
		return
	}
	pairs := make([]string, 0, 4*len(ws))
	for i, w := range ws {
		idx := fmt.Sprintf("waivers[%d]", nPolicy+i)
		pairs = append(pairs, idx+" for ", "waiver "+w.ID+" for ", idx+" expired", "waiver "+w.ID+" expired")
	}
	r := strings.NewReplacer(pairs...)
	for i := range d.Reasons {
		d.Reasons[i].Message = r.Replace(d.Reasons[i].Message)
	}
}

// gateSummaryVersion is the version of the gateSummary document.
const gateSummaryVersion = 1

// gateSummary is what the gate needs of a scan result, stored beside the
// scan (store.PutGateSummary) when it succeeds: the findings without
// snippets or engine notes, and of the SBOM only the count of components
// and the components that declare a license.
type gateSummary struct {
	V        int               `json:"v"`
	Findings []scanner.Finding `json:"findings"`
	SBOM     bool              `json:"sbom"`
	// Components counts every SBOM component; Licensed holds those with
	// licenses (name, version, licenses).
	Components int                 `json:"components,omitempty"`
	Licensed   []scanner.Component `json:"licensed,omitempty"`
	// Repo is the policy file of a scanned commit; nil for an image, or
	// a scan from before it was kept (judged by the server's policy).
	Repo *repoPolicy `json:"repo_policy,omitempty"`
}

func summarize(res *scanner.Result) *gateSummary {
	sum := &gateSummary{V: gateSummaryVersion, Findings: make([]scanner.Finding, 0, len(res.Findings))}
	for _, f := range res.Findings {
		var keep []scanner.Suppression
		for _, sup := range f.Suppressions {
			if sup.Kind != scanner.SuppressionExternal {
				keep = append(keep, sup)
			}
		}
		sum.Findings = append(sum.Findings, scanner.Finding{
			RuleID: f.RuleID, Message: f.Message, Severity: f.Severity, Confidence: f.Confidence,
			File: f.File, Line: f.Line, Fingerprint: f.Fingerprint, Suppressed: len(keep) > 0, Suppressions: keep,
		})
	}
	if res.SBOM != nil {
		sum.SBOM = true
		sum.Components = len(res.SBOM.Components)
		for _, c := range res.SBOM.Components {
			if len(c.Licenses) > 0 {
				sum.Licensed = append(sum.Licensed, scanner.Component{Name: c.Name, Version: c.Version, Licenses: c.Licenses})
			}
		}
	}
	return sum
}

// result is the summary as a result for ci.Evaluate, which changes what
// it is given: every call makes a new one.
func (sum *gateSummary) result() *scanner.Result {
	res := &scanner.Result{Findings: slices.Clone(sum.Findings)}
	if sum.SBOM {
		// Components without a license are never denied: the zero ones
		// stand in for them, so that the pass message counts them all.
		comps := make([]scanner.Component, max(sum.Components, len(sum.Licensed)))
		copy(comps, sum.Licensed)
		res.SBOM = &scanner.SBOM{Components: comps}
	}
	return res
}

// storeGateSummary stores the gate summary of a scan's result.
func (s *Server) storeGateSummary(ctx context.Context, scanID string, res *scanner.Result, repo *repoPolicy) (*gateSummary, error) {
	sum := summarize(res)
	sum.Repo = repo
	b, err := json.Marshal(sum)
	if err != nil {
		return nil, err
	}
	return sum, s.db.PutGateSummary(ctx, scanID, b)
}

// gateSummary reads the gate summary of a succeeded scan. A scan that
// succeeded before summaries were stored gets one from its result blob.
func (s *Server) gateSummary(ctx context.Context, sc ci.Scan) (*gateSummary, error) {
	b, err := s.db.GetGateSummary(ctx, sc.ID)
	if err == nil {
		var sum gateSummary
		if err := json.Unmarshal(b, &sum); err != nil {
			return nil, fmt.Errorf("scan %s: bad gate summary: %w", sc.ID, err)
		}
		if sum.V == gateSummaryVersion {
			return &sum, nil
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	a, err := s.loadArtifacts(ctx, sc)
	if err != nil {
		return nil, err
	}
	res, err := s.resultOf(ctx, sc, a)
	if err != nil {
		return nil, err
	}
	return s.storeGateSummary(ctx, sc.ID, res, a.RepoPolicy)
}

// Gate decisions cache. Its keys hold everything a decision depends on
// but the time, so a hit is always right until the entry's deadline.
const (
	maxGateCache    = 8192
	maxGateCacheAge = 10 * time.Minute
)

type gateKey struct {
	scan  string
	state ci.GateState
}

type gateEntry struct {
	v     verdict
	until time.Time
}

// gateCache belongs to one Server (Server.gates), so its keys need not
// name the database.
type gateCache struct {
	mu sync.Mutex
	m  map[gateKey]gateEntry
}

func newGateCache() *gateCache { return &gateCache{m: map[gateKey]gateEntry{}} }

// get returns a cached decision; callers must not change it.
func (c *gateCache) get(k gateKey, at time.Time) (verdict, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || !at.Before(e.until) {
		return verdict{}, false
	}
	return e.v, true
}

func (c *gateCache) put(k gateKey, v verdict, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxGateCache {
		// Evict about an eighth, chosen by map order (random enough).
		n := maxGateCache / 8
		for old := range c.m {
			delete(c.m, old)
			if n--; n == 0 {
				break
			}
		}
	}
	c.m[k] = gateEntry{v: v, until: until}
}

// admissionGates answers the admission webhook from stored scans.
type admissionGates struct{ s *Server }

func (a admissionGates) ImageGate(ctx context.Context, img string) (*ci.Decision, error) {
	g, d, err := a.s.findImageGate(ctx, img)
	if errors.Is(err, store.ErrInvalid) {
		d, err = notScanned("image "+img+" is not a valid image reference"), nil
	}
	if err != nil {
		return nil, err
	}
	if d != nil {
		a.s.metrics.decisions.WithLabelValues(d.Decision, "admission").Inc()
		return d, nil
	}
	d, err = a.s.decideGate(ctx, g)
	if err != nil {
		return nil, err
	}
	a.s.metrics.decisions.WithLabelValues(d.Decision, "admission").Inc()
	return d, nil
}
