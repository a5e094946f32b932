package format

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/securego/gosec/v2/report/sarif"

	"github.com/vigil-sec/vigil/internal/version"
	"github.com/vigil-sec/vigil/scanner"
	"github.com/vigil-sec/vigil/scanner/source"
)

// srcRoot is the uriBaseId that result locations are relative to.
const srcRoot = "%SRCROOT%"

// securitySeverity maps a level to GitHub code scanning's
// "security-severity" score (high ≥ 7.0, medium ≥ 4.0, low < 4.0).
var securitySeverity = map[scanner.Level]string{
	scanner.LevelHigh:   "8.0",
	scanner.LevelMedium: "5.5",
	scanner.LevelLow:    "3.0",
}

// sarifLevel maps a severity to a SARIF result level.
var sarifLevel = map[scanner.Level]string{
	scanner.LevelHigh:   "error",
	scanner.LevelMedium: "warning",
	scanner.LevelLow:    "note",
}

// WriteSARIF writes the result's findings as one SARIF 2.1.0 run, fit for
// GitHub code scanning: every result has Vigil's fingerprint in
// partialFingerprints, suppressed results carry suppressions[] (inSource for
// #nosec, external for policy waivers) and a baselineState when the scan was
// compared with a baseline.
func WriteSARIF(w io.Writer, res *scanner.Result) error {
	return EncodeSARIF(w, SARIFRun(res))
}

// EncodeSARIF writes runs as one SARIF 2.1.0 log, indented as every SARIF
// document Vigil writes. Reports that gather several scans (reports/format)
// write one run per scan with it.
func EncodeSARIF(w io.Writer, runs ...*sarif.Run) error {
	report := sarif.NewReport(sarif.Version, sarif.Schema).WithRuns(runs...)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(report)
}

// SARIFRun converts a scan result into the SARIF run WriteSARIF writes: Vigil
// as the driver with a rule per rule ID in order of first appearance, the
// engines as extensions, one result per finding in the result's order,
// automationDetails.id "vigil/<kind>/", versionControlProvenance for a
// commit of a remote repository, and a failed invocation naming the parts
// of the target no engine analysed. Callers may amend the run before
// encoding it.
func SARIFRun(res *scanner.Result) *sarif.Run {
	// The version is a number first in every build (SARIF consumers
	// compare it; "devel" is 0.0.0-devel), and a semantic version.
	driver := sarif.NewToolComponent("Vigil", version.Numeric(), "https://github.com/vigil-sec/vigil")
	driver.SemanticVersion = version.Numeric()
	run := sarif.NewRun(sarif.NewTool(driver))
	run.Results = []*sarif.Result{}
	run.AutomationDetails = &sarif.RunAutomationDetails{ID: "vigil/" + string(res.Target.Kind) + "/"}
	if res.Target.Kind == scanner.KindGit && res.Target.Commit != "" && source.IsRepoURL(res.Target.Ref) {
		run.VersionControlProvenance = []*sarif.VersionControlDetails{{
			RepositoryURI: RepositoryURI(res.Target.Ref),
			RevisionID:    res.Target.Commit,
		}}
	}
	for _, e := range res.Engines {
		run.Tool.Extensions = append(run.Tool.Extensions, sarif.NewToolComponent(e.ID, e.Version, ""))
	}

	ruleIndex := map[string]int{}
	for _, f := range res.Findings {
		idx, ok := ruleIndex[f.RuleID]
		if !ok {
			idx = len(driver.Rules)
			ruleIndex[f.RuleID] = idx
			driver.Rules = append(driver.Rules, rule(f))
		}
		r := &sarif.Result{
			RuleID:              f.RuleID,
			RuleIndex:           idx,
			Level:               sarifLevel[f.Severity],
			Message:             sarif.NewMessage(f.Message),
			PartialFingerprints: map[string]string{scanner.FingerprintKey: f.Fingerprint},
			Locations:           []*sarif.Location{location(f)},
			Properties: &sarif.PropertyBag{
				"severity":   f.Severity.String(),
				"confidence": f.Confidence.String(),
			},
		}
		if f.Status != "" {
			r.BaselineState = string(f.Status)
		}
		for _, s := range f.Suppressions {
			sup := sarif.NewSuppression(string(s.Kind), s.Justification)
			sup.Status = "accepted"
			if s.Owner != "" {
				sup.Properties = &sarif.PropertyBag{"owner": s.Owner, "expires": s.Expires}
			}
			r.Suppressions = append(r.Suppressions, sup)
		}
		run.Results = append(run.Results, r)
	}

	if len(res.Unanalysed) > 0 {
		run.Invocations = []*sarif.Invocation{unanalysedInvocation(res.Unanalysed)}
	}

	return run
}

// RepositoryURI returns a remote repository's address as a URI, which
// SARIF's versionControlProvenance and the SBOM formats require: an
// scp-like address (git@host:org/repo.git), which is not a URI, becomes
// the ssh URL git reads the same way (ssh://git@host/org/repo.git); a
// URL is returned as it is.
func RepositoryURI(repo string) string {
	if strings.Contains(repo, "://") || !source.IsRepoURL(repo) {
		return repo
	}
	hostPart, path, _ := strings.Cut(repo, ":")
	return "ssh://" + hostPart + "/" + strings.TrimPrefix(path, "/")
}

// unanalysedInvocation reports the parts of the target that were not
// analysed as error notifications of an unsuccessful invocation, so that a
// SARIF consumer (GitHub code scanning shows them as tool errors) never
// reads the absence of results there as clean code.
func unanalysedInvocation(parts []scanner.Unanalysed) *sarif.Invocation {
	inv := &sarif.Invocation{ExecutionSuccessful: false}
	for _, u := range parts {
		uri := u.Path
		if uri == "." || uri == "" {
			uri = "./"
		}
		inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications, &sarif.Notification{
			Level:      "error",
			Message:    sarif.NewMessage(fmt.Sprintf("%s could not analyse %s: %s", u.Engine, u.Path, u.Reason)),
			Descriptor: &sarif.ReportingDescriptorReference{ID: scanner.CodeNotAnalysed},
			Locations: []*sarif.Location{sarif.NewLocation(sarif.NewPhysicalLocation(
				&sarif.ArtifactLocation{URI: uri, UriBaseID: srcRoot}, nil))},
			Properties: &sarif.PropertyBag{"engine": u.Engine, "path": u.Path},
		})
	}
	return inv
}

func rule(f scanner.Finding) *sarif.ReportingDescriptor {
	tags := []string{"security"}
	if f.CWE != "" {
		tags = append(tags, f.CWE)
	}
	info := scanner.Rule(f.Engine, f.RuleID)
	d := &sarif.ReportingDescriptor{
		ID:               f.RuleID,
		Name:             info.Name,
		ShortDescription: sarif.NewMultiformatMessageString(f.Message),
		FullDescription:  sarif.NewMultiformatMessageString(f.Message),
		Help:             sarif.NewMultiformatMessageString(f.Message),
		DefaultConfiguration: &sarif.ReportingConfiguration{
			Level: sarifLevel[f.Severity],
		},
		Properties: &sarif.PropertyBag{
			"tags":              tags,
			"precision":         precision(f.Confidence),
			"security-severity": securitySeverity[f.Severity],
		},
	}
	if info.HelpURI != "" {
		d.HelpURI = info.HelpURI
	}
	return d
}

// precision maps a confidence to the SARIF rule property code scanning
// reads.
func precision(l scanner.Level) string {
	switch l {
	case scanner.LevelHigh:
		return "high"
	case scanner.LevelMedium:
		return "medium"
	}
	return "low"
}

func location(f scanner.Finding) *sarif.Location {
	region := &sarif.Region{StartLine: f.Line, StartColumn: f.Column, SourceLanguage: "go"}
	if f.EndLine > f.Line {
		region.EndLine = f.EndLine
	}
	if f.Snippet != "" {
		region.Snippet = sarif.NewArtifactContent(f.Snippet)
	}
	return sarif.NewLocation(sarif.NewPhysicalLocation(
		&sarif.ArtifactLocation{URI: f.File, UriBaseID: srcRoot}, region))
}
