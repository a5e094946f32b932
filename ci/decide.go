package ci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

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

// GatePolicy says which policy decided a gate (see Combine).
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

// Verdict is a decision with the policy that made it (nil before a
// result is judged).
type Verdict struct {
	Decision *Decision
	Policy   *GatePolicy
}

// NotScanned is the unknown decision of a commit or image that has no
// scan, saying why in msg.
func NotScanned(msg string) *Decision {
	return &Decision{Decision: Unknown, Reasons: []Reason{{Code: CodeNotScanned, Message: msg}}}
}

// tagResolveTimeout bounds the registry lookups that resolve a tag to its
// digest for one gate query; the admission webhook's own deadline
// (admission.DefaultLookupTimeout) is longer.
const tagResolveTimeout = 2 * time.Second

// CommitGate finds the scan that decides the gate of a project's commit
// (the project named by name or ID), with what its gate depends on. When
// the commit has no scan, the decision returned is the answer (unknown):
// reading never starts work (gate:read must not make the server clone);
// a push webhook or a scans:write client queues the scan.
func (s *Service) CommitGate(ctx context.Context, projectRef, commit string) (ScanGate, *Decision, error) {
	// The common case in one query; a project named by ID, or a commit
	// not scanned yet, take the longer way.
	g, err := s.store.CommitScanGate(ctx, projectRef, commit)
	if !errors.Is(err, ErrNotFound) {
		return g, nil, err
	}
	p, err := s.Project(ctx, projectRef)
	if err != nil {
		return ScanGate{}, nil, err
	}
	if commit, err = s.fullCommit(ctx, p, commit); err != nil {
		return ScanGate{}, nil, err
	}
	sc, err := s.store.FindCommitScan(ctx, p.ID, commit)
	if errors.Is(err, ErrNotFound) {
		return ScanGate{}, NotScanned(fmt.Sprintf("commit %s of %s has not been scanned; push it, or POST it to /api/v1/scans, and ask again",
			strings.ToLower(strings.TrimSpace(commit)), p.Name)), nil
	}
	if err != nil {
		return ScanGate{}, nil, err
	}
	g = ScanGate{Scan: sc, Project: p}
	g.State, err = s.store.GateState(ctx, sc.ID)
	return g, nil, err
}

// ImageGate finds the scan that decides the gate of an image named by
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
func (s *Service) ImageGate(ctx context.Context, img string) (ScanGate, *Decision, error) {
	img = strings.TrimSpace(img)
	if strings.HasPrefix(img, "sha256:") || strings.HasPrefix(img, "sha512:") {
		g, err := s.store.ImageScanGate(ctx, img)
		if errors.Is(err, ErrNotFound) {
			return g, NotScanned("image " + img + " has not been scanned; POST it to /api/v1/scans"), nil
		}
		return g, nil, err
	}
	ref, err := name.ParseReference(img)
	if err != nil {
		return ScanGate{}, nil, fmt.Errorf("%w: image %q: %v", ErrInvalid, img, err)
	}
	if d, ok := ref.(name.Digest); ok {
		g, err := s.store.ImageScanGate(ctx, d.DigestStr())
		if errors.Is(err, ErrNotFound) {
			return g, NotScanned("image " + img + " has not been scanned; POST it to /api/v1/scans"), nil
		}
		return g, nil, err
	}
	digests, err := s.resolveTag(ctx, ref)
	if err != nil {
		s.log.WarnContext(ctx, "gate: tag not resolved", slog.String("image", ref.Name()), slog.Any("error", err))
		return ScanGate{}, &Decision{Decision: Unknown, Reasons: []Reason{{
			Code: CodeTagUnresolved,
			Message: fmt.Sprintf("image %s: the tag could not be resolved to its current digest at its registry; "+
				"an image is judged by digest: retry, or give a digest reference", ref.Name()),
		}}}, nil
	}
	for _, d := range digests {
		g, err := s.store.ImageScanGate(ctx, d)
		if !errors.Is(err, ErrNotFound) {
			return g, nil, err
		}
	}
	return ScanGate{}, NotScanned(fmt.Sprintf("image %s now names %s, which has not been scanned; POST it to /api/v1/scans",
		ref.Name(), digests[len(digests)-1])), nil
}

// resolveTag asks the tag's registry which digest it names now: the
// digest of the manifest (HEAD), and for an index also the digest of the
// image the scans pick from it (image.Resolve), which is what a scan
// enqueued by tag records. The first is tried first.
func (s *Service) resolveTag(ctx context.Context, ref name.Reference) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, tagResolveTimeout)
	defer cancel()
	opts := s.ImageOptions(ref.Name())
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

// Decide is the gate decision of a scan: pending until it finishes, fail
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
func (s *Service) Decide(ctx context.Context, sc Scan) (*Decision, error) {
	if sc.Status != ScanSucceeded {
		return s.DecideGate(ctx, ScanGate{Scan: sc})
	}
	g := ScanGate{Scan: sc}
	if sc.ProjectID != "" {
		var err error
		if g.Project, err = s.store.GetProject(ctx, sc.ProjectID); err != nil {
			return nil, err
		}
	}
	var err error
	if g.State, err = s.store.GateState(ctx, sc.ID); err != nil {
		return nil, err
	}
	return s.DecideGate(ctx, g)
}

// DecideGate is decide for a scan read with its gate state.
func (s *Service) DecideGate(ctx context.Context, g ScanGate) (*Decision, error) {
	v, err := s.Judge(ctx, g)
	return v.Decision, err
}

// Judge is DecideGate with the policy that decided.
func (s *Service) Judge(ctx context.Context, g ScanGate) (Verdict, error) {
	sc, p, st := g.Scan, g.Project, g.State
	switch sc.Status {
	case ScanQueued, ScanRunning:
		return Verdict{Decision: &Decision{Decision: Pending, Reasons: []Reason{{
			Code: CodeScanPending, Message: fmt.Sprintf("the scan is %s; ask again when it has finished", sc.Status),
		}}}}, nil
	case ScanFailed:
		return Verdict{Decision: &Decision{Decision: Fail, Reasons: []Reason{{
			Code: CodeScanFailed, Message: "the scan failed: " + sc.Error,
		}}}}, nil
	}
	// The baseline applies to commit scans off the default branch only
	// (image scans are read without their project: none).
	if sc.Kind != KindCommit || p.DefaultBranch == "" || st.Branch == p.DefaultBranch {
		st.BaselineScanID = ""
	}
	at := now()
	key := gateKey{scan: sc.ID, state: st}
	if v, ok := s.gates.get(key, at); ok {
		return v, nil
	}
	v, until, err := s.evaluate(ctx, sc, p, st, at)
	if err != nil {
		return Verdict{}, err
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
// with the policy file the commit carries (Combine); a file that
// cannot be used fails the gate naming it, as a bad project policy does.
// The file is the scan's, so the cache key (the scan and the project's
// policy version) covers it.
func (s *Service) evaluate(ctx context.Context, sc Scan, p Project, st GateState, at time.Time) (Verdict, time.Time, error) {
	sum, err := s.gateSummary(ctx, sc)
	if err != nil {
		return Verdict{}, time.Time{}, err
	}
	if p.ID == "" && sc.ProjectID != "" {
		if p, err = s.store.GetProject(ctx, sc.ProjectID); err != nil {
			return Verdict{}, time.Time{}, err
		}
	}
	badPolicy := func(err error) (Verdict, time.Time, error) {
		return Verdict{Decision: &Decision{Decision: Fail, Reasons: []Reason{{Code: CodeBadPolicy, Message: err.Error()}}}}, time.Time{}, nil
	}
	var apiWaivers []ProjectWaiver
	if p.ID != "" && st.WaiverVersion > 0 {
		if apiWaivers, err = s.store.ListWaivers(ctx, p.ID); err != nil {
			return Verdict{}, time.Time{}, err
		}
	}
	pol, info, bad, err := s.gatePolicy(ctx, sc, p, st.PolicyVersion, sum, apiWaivers)
	if err != nil {
		return Verdict{}, time.Time{}, err
	}
	if bad != nil {
		return badPolicy(bad)
	}
	nPolicy := len(pol.Waivers) - len(apiWaivers)
	var base *Baseline
	if st.BaselineScanID != "" {
		bs, err := s.store.GetScan(ctx, st.BaselineScanID)
		if err != nil {
			return Verdict{}, time.Time{}, err
		}
		if base, err = s.baseline(ctx, bs, p); err != nil {
			return Verdict{}, time.Time{}, err
		}
	}
	d := Evaluate(sum.result(), pol, base, at)
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
	return Verdict{Decision: d, Policy: info}, until, nil
}

// gatePolicy is the policy that judges a succeeded scan of project p
// (zero for an image outside any project): the project's policy version
// (0: none, the defaults) combined, for a commit, with the policy file
// the commit carries (sum.Repo), and the waivers made through the API
// after the policy's own. A policy that cannot be used is returned as
// bad, for the gate to fail naming it; err is the store's.
func (s *Service) gatePolicy(ctx context.Context, sc Scan, p Project, version int, sum *gateSummary, apiWaivers []ProjectWaiver) (pol *Policy, info *GatePolicy, bad, err error) {
	var serverPol *Policy
	if p.ID != "" && version > 0 {
		stored, err := s.store.GetPolicy(ctx, p.ID, version)
		if err != nil {
			return nil, nil, nil, err
		}
		if serverPol, err = ParsePolicy(fmt.Sprintf("policy v%d of %s", stored.Version, p.Name), []byte(stored.Body)); err != nil {
			return nil, nil, err, nil
		}
	}
	info = &GatePolicy{Version: version}
	var repoPol *Policy
	if sc.Kind == KindCommit && (serverPol == nil || !serverPol.Repository.Ignore) {
		if repoPol, err = sum.Repo.parse(sc.CommitSHA); err != nil {
			return nil, nil, err, nil
		}
	}
	pol, origin := Combine(serverPol, repoPol)
	info.Origin = string(origin)
	if origin != OriginServer {
		info.RepositoryFile, info.RepositorySHA256 = repoPolicyName(sc.CommitSHA), sum.Repo.SHA256
	}
	for _, w := range apiWaivers {
		pol.Waivers = append(pol.Waivers, w.Waiver())
	}
	return pol, info, nil, nil
}

// baseline is the baseline that scan bs of p's default branch makes.
func (s *Service) baseline(ctx context.Context, bs Scan, p Project) (*Baseline, error) {
	bsum, err := s.gateSummary(ctx, bs)
	if err != nil {
		return nil, err
	}
	fps := make([]string, 0, len(bsum.Findings))
	for _, f := range bsum.Findings {
		fps = append(fps, f.Fingerprint)
	}
	base := NewBaseline(fps...)
	base.Source = fmt.Sprintf("scan %s of %s@%s", bs.ID, p.DefaultBranch, bs.CommitSHA)
	return base, nil
}

// Waiver is the waiver of the API as the gate applies it.
func (w ProjectWaiver) Waiver() Waiver {
	return Waiver{Rule: w.Rule, Path: w.Path, Fingerprint: w.Fingerprint, Reason: w.Reason, Owner: w.Owner, Expires: w.Expires}
}

// nameAPIWaivers makes the reasons name a waiver of the API by its ID
// ("waiver 0192…") where Evaluate, which knows only the policy's list,
// calls it by its index after the policy's own ("waivers[3]").
func nameAPIWaivers(d *Decision, nPolicy int, ws []ProjectWaiver) {
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

// result is the summary as a result for Evaluate, which changes what
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
func (s *Service) storeGateSummary(ctx context.Context, scanID string, res *scanner.Result, repo *repoPolicy) (*gateSummary, error) {
	sum := summarize(res)
	sum.Repo = repo
	b, err := json.Marshal(sum)
	if err != nil {
		return nil, err
	}
	return sum, s.store.PutGateSummary(ctx, scanID, b)
}

// gateSummary reads the gate summary of a succeeded scan. A scan that
// succeeded before summaries were stored gets one from its result blob.
func (s *Service) gateSummary(ctx context.Context, sc Scan) (*gateSummary, error) {
	b, err := s.store.GetGateSummary(ctx, sc.ID)
	if err == nil {
		var sum gateSummary
		if err := json.Unmarshal(b, &sum); err != nil {
			return nil, fmt.Errorf("scan %s: bad gate summary: %w", sc.ID, err)
		}
		if sum.V == gateSummaryVersion {
			return &sum, nil
		}
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	a, err := s.Artifacts(ctx, sc)
	if err != nil {
		return nil, err
	}
	res, err := s.ResultOf(ctx, sc, a)
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
	state GateState
}

type gateEntry struct {
	v     Verdict
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
func (c *gateCache) get(k gateKey, at time.Time) (Verdict, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || !at.Before(e.until) {
		return Verdict{}, false
	}
	return e.v, true
}

func (c *gateCache) put(k gateKey, v Verdict, until time.Time) {
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

// Lengths of the commit SHAs the gate is asked about: a full SHA-1 or
// SHA-256 object name, or a prefix of at least MinShortSHA hex digits.
const (
	MinShortSHA = 7
	sha1Len     = 40
	sha256Len   = 64
)

// fullCommit returns the commit a gate query names: a full SHA as it is,
// a shorter prefix as the one scanned commit of the project it names. A
// prefix that names none, or several, is ErrInvalid saying so: the
// server knows the commits it scanned, not the repository's others.
func (s *Service) fullCommit(ctx context.Context, p Project, commit string) (string, error) {
	c := strings.ToLower(strings.TrimSpace(commit))
	if strings.Trim(c, "0123456789abcdef") != "" || len(c) < MinShortSHA || len(c) > sha256Len {
		return "", fmt.Errorf("%w: commit %q: want a SHA of %d hex digits, or its first %d or more", ErrInvalid, commit, sha1Len, MinShortSHA)
	}
	if len(c) == sha1Len || len(c) == sha256Len {
		return c, nil
	}
	found, err := s.store.ScannedCommits(ctx, p.ID, c, 2)
	if err != nil {
		return "", err
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%w: commit %s is not a full SHA and no scanned commit of %s starts with it; give the full SHA (git rev-parse %s)", ErrInvalid, c, p.Name, c)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%w: commit %s is ambiguous: several scanned commits of %s start with it (%s, %s); give more of it", ErrInvalid, c, p.Name, found[0], found[1])
}
