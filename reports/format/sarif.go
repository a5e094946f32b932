package format

import (
	"io"
	"time"

	"github.com/securego/gosec/v2/report/sarif"

	"github.com/vigil-sec/vigil/reports"
	scanformat "github.com/vigil-sec/vigil/scanner/format"
)

// WaiversProperty names the run property that holds the project's waiver
// register as it stood when the release was cut.
const WaiversProperty = "vigil/waivers"

// WriteSARIF writes the release's findings as one SARIF 2.1.0 log with a
// run per repository commit (and per image with findings), in
// SortedScans order. Each run is scanner/format's SARIFRun of the scan's
// result, so results, rules, fingerprints and suppressions are those
// `vigil scan -o sarif` writes, with:
//
//   - automationDetails.id "vigil/release/PROJECT/COMMIT" (or
//     "vigil/release/IMAGE/DIGEST"): a category per target and the
//     commit as the run's ID;
//   - versionControlProvenance naming the repository and commit;
//   - an invocation with the scan's start and end times;
//   - the product, version, policy version and waiver register (rule,
//     path, fingerprint, owner, reason, expiry) in the run's properties.
func WriteSARIF(w io.Writer, rel *reports.Release) error {
	if err := rel.Validate(); err != nil {
		return err
	}
	runs := []*sarif.Run{}
	for _, s := range rel.SortedScans() {
		if s.IsImage() && len(s.Result.Findings) == 0 {
			continue
		}
		runs = append(runs, sarifRun(rel, s))
	}
	return scanformat.EncodeSARIF(w, runs...)
}

func sarifRun(rel *reports.Release, s *reports.ReleaseScan) *sarif.Run {
	run := scanformat.SARIFRun(s.Result)
	props := sarif.PropertyBag{
		"product":       rel.ProductID,
		"version":       rel.Version,
		"released":      rel.Created.UTC().Format(time.RFC3339),
		"target":        s.Name(),
		"policy":        s.PolicyVersion,
		WaiversProperty: waivers(s, rel.Created),
	}
	if s.IsImage() {
		run.AutomationDetails = &sarif.RunAutomationDetails{ID: "vigil/release/" + s.Image + "/" + s.Digest}
		props["digest"] = s.Digest
	} else {
		run.AutomationDetails = &sarif.RunAutomationDetails{ID: "vigil/release/" + s.Project + "/" + s.Commit}
		run.VersionControlProvenance = nil
		if uri := repositoryURI(s); uri != "" {
			run.VersionControlProvenance = []*sarif.VersionControlDetails{{RepositoryURI: uri, RevisionID: s.Commit}}
		}
		props["commit"] = s.Commit
	}
	run.Properties = &props

	start, end := s.Result.StartedAt.UTC().Format(time.RFC3339), s.Result.FinishedAt.UTC().Format(time.RFC3339)
	if len(run.Invocations) == 0 {
		run.Invocations = []*sarif.Invocation{{ExecutionSuccessful: true}}
	}
	for _, inv := range run.Invocations {
		inv.StartTimeUtc, inv.EndTimeUtc = start, end
	}
	return run
}

// sarifWaiver is a waiver as a SARIF property: what it covers, who owns
// it, why, and the last day it applies.
type sarifWaiver struct {
	Rule        string `json:"rule,omitempty"`
	Path        string `json:"path,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	Owner       string `json:"owner"`
	Reason      string `json:"reason"`
	Expires     string `json:"expires"`
	// Active says whether the waiver still applied when the release was
	// cut.
	Active bool `json:"active"`
}

func waivers(s *reports.ReleaseScan, at time.Time) []sarifWaiver {
	out := []sarifWaiver{}
	for _, w := range s.Waivers {
		out = append(out, sarifWaiver{
			Rule: w.Rule, Path: w.Path, Fingerprint: w.Fingerprint,
			Owner: w.Owner, Reason: w.Reason, Expires: w.Expires.UTC().Format(time.DateOnly),
			Active: w.Active(at),
		})
	}
	return out
}
