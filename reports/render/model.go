package render

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/version"
	"github.com/vigil-sec/vigil/reports"
	"github.com/vigil-sec/vigil/scanner"
)

// Options are what the summary says about verifying the bundle; a nil
// Options leaves the key and predicate type out.
type Options struct {
	// KeyID is the ID of the key that signs the bundle (an RFC 7638
	// thumbprint).
	KeyID string
	// PredicateType is the attestation's predicate type URI, which
	// cosign's --type needs.
	PredicateType string
}

// Limits of what the summary lists in full (the bundle's SARIF and SBOMs
// have everything).
const (
	maxFindings = 200 // open findings listed
	maxRules    = 10  // rules in the chart by rule
	maxLicenses = 30  // licenses listed
	historyDays = 90  // days in the gate history chart
)

// Finding states.
const (
	stateOpen       = "open"
	stateWaived     = "waived"
	stateSuppressed = "suppressed in source"
)

var states = []string{stateOpen, stateWaived, stateSuppressed}

// stateOf says whether a finding counts: open, waived by a policy waiver,
// or suppressed by a comment in the source.
func stateOf(f *scanner.Finding) string {
	switch {
	case !f.Suppressed:
		return stateOpen
	case f.SuppressedInSource():
		return stateSuppressed
	}
	return stateWaived
}

// severities, highest first.
var severities = []scanner.Level{scanner.LevelHigh, scanner.LevelMedium, scanner.LevelLow, scanner.LevelUnknown}

// summary is everything the two renderings show, computed once.
type summary struct {
	Product, ProductID, Version string
	Released                    string // "30 November 2026"
	ReleasedAt                  string // RFC 3339
	Recipient                   reports.Recipient
	Watermark                   string
	Generator                   string

	Repos  []targetRow
	Images []targetRow

	Findings, Open int
	BySeverity     []countRow // one per severity, then the total
	OpenFindings   []findingRow
	Omitted        int // open findings not listed
	Gates          []gateRow
	Charts         []*chart

	Waivers []waiverRow

	Components      []componentRow
	Packages        int // components across targets
	Licenses        []licenseRow
	LicensesOmitted int
	Unlicensed      int
	Denied          []deniedRow

	// Overview and ComponentTotals are the sentences that sum up the
	// report and its components.
	Overview, ComponentTotals string

	Verify verifyInfo
}

type targetRow struct {
	Name, Location    string // project and repository URL, or image and platform
	Revision          string // commit or digest
	Started, Finished string
	Engines           string
	Policy            string
}

type countRow struct {
	Label                           string
	Open, Waived, Suppressed, Total int
}

type findingRow struct {
	Severity, Confidence, Rule, Target, Location, Message string
}

type gateRow struct {
	Target, Decision, Reasons string
}

type waiverRow struct {
	Target, Covers, Owner, Reason, Expires, Status string
}

type componentRow struct {
	Target               string
	Components, Licensed int
}

type licenseRow struct {
	License    string
	Components int
}

type deniedRow struct {
	Target, Component, Message string
}

type verifyInfo struct {
	KeyID, PredicateType string
	Files                []string
}

// BundleFiles are the files of a report bundle, as the summary lists
// them.
var BundleFiles = []string{
	"sbom.cdx.json", "sbom.spdx.json", "sast.sarif", "summary.pdf", "summary.html",
	"attestation.intoto.jsonl", "README.txt",
}

const timeLayout = "2006-01-02 15:04 UTC"

func summarize(rel *reports.Release, to reports.Recipient, opts *Options) (*summary, error) {
	if err := rel.Validate(); err != nil {
		return nil, err
	}
	if err := to.Validate(); err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &Options{}
	}
	s := &summary{
		Product:    cmp.Or(rel.ProductName, rel.ProductID),
		ProductID:  rel.ProductID,
		Version:    rel.Version,
		Released:   rel.Created.UTC().Format("2 January 2006"),
		ReleasedAt: rel.Created.UTC().Format(time.RFC3339),
		Recipient:  to,
		Watermark:  Watermark(to),
		Generator:  "Vigil " + version.Vigil(),
		Verify:     verifyInfo{KeyID: opts.KeyID, PredicateType: opts.PredicateType, Files: BundleFiles},
	}

	bySeverity := map[scanner.Level]*countRow{}
	for _, l := range severities {
		bySeverity[l] = &countRow{Label: l.String()}
	}
	total := &countRow{Label: "total"}
	byRule := map[string]map[string]int{}
	licenses := map[string]int{}
	var open []findingRow
	var history []reports.GatePoint

	for _, sc := range rel.SortedScans() {
		res := sc.Result
		row := targetRow{
			Name:     sc.Name(),
			Started:  res.StartedAt.UTC().Format(timeLayout),
			Finished: res.FinishedAt.UTC().Format(timeLayout),
			Engines:  engines(res.Engines),
			Policy:   cmp.Or(sc.PolicyVersion, "not recorded"),
		}
		if sc.IsImage() {
			row.Location, row.Revision = res.Target.Platform, sc.Digest
			s.Images = append(s.Images, row)
		} else {
			row.Location, row.Revision = sc.Repository, sc.Commit
			s.Repos = append(s.Repos, row)
		}

		for i := range res.Findings {
			f := &res.Findings[i]
			st := stateOf(f)
			c := bySeverity[f.Severity]
			if c == nil {
				c = bySeverity[scanner.LevelUnknown]
			}
			c.add(st)
			total.add(st)
			if byRule[f.RuleID] == nil {
				byRule[f.RuleID] = map[string]int{}
			}
			byRule[f.RuleID][st]++
			if st == stateOpen {
				open = append(open, findingRow{
					Severity: f.Severity.String(), Confidence: f.Confidence.String(), Rule: f.RuleID,
					Target: sc.Name(), Location: fmt.Sprintf("%s:%d", f.File, f.Line), Message: f.Message,
				})
			}
		}

		if sc.Gate != nil {
			s.Gates = append(s.Gates, gateRow{Target: sc.Name(), Decision: sc.Gate.Decision, Reasons: reasons(sc.Gate)})
			for _, r := range sc.Gate.Reasons {
				if r.Code == ci.CodeLicenseDenied {
					s.Denied = append(s.Denied, deniedRow{Target: sc.Name(), Component: r.Component, Message: r.Message})
				}
			}
		}
		for _, w := range sc.Waivers {
			status := "active"
			if !w.Active(rel.Created) {
				status = "expired"
			}
			s.Waivers = append(s.Waivers, waiverRow{
				Target: sc.Name(), Covers: covers(w), Owner: w.Owner, Reason: w.Reason,
				Expires: w.Expires.UTC().Format(time.DateOnly), Status: status,
			})
		}
		history = append(history, sc.GateHistory...)

		if res.SBOM != nil {
			cr := componentRow{Target: sc.Name(), Components: len(res.SBOM.Components)}
			for _, c := range res.SBOM.Components {
				if len(c.Licenses) == 0 {
					s.Unlicensed++
					continue
				}
				cr.Licensed++
				for _, l := range c.Licenses {
					licenses[l]++
				}
			}
			s.Components = append(s.Components, cr)
			s.Packages += cr.Components
		}
	}

	for _, l := range severities {
		s.BySeverity = append(s.BySeverity, *bySeverity[l])
	}
	s.BySeverity = append(s.BySeverity, *total)
	s.Findings, s.Open = total.Total, total.Open

	slices.SortStableFunc(open, func(a, b findingRow) int {
		return cmp.Or(-cmp.Compare(levelRank(a.Severity), levelRank(b.Severity)),
			cmp.Compare(a.Target, b.Target), cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.Location, b.Location))
	})
	if len(open) > maxFindings {
		s.Omitted = len(open) - maxFindings
		open = open[:maxFindings]
	}
	s.OpenFindings = open

	for l, n := range licenses {
		s.Licenses = append(s.Licenses, licenseRow{License: l, Components: n})
	}
	slices.SortFunc(s.Licenses, func(a, b licenseRow) int {
		return cmp.Or(-cmp.Compare(a.Components, b.Components), cmp.Compare(a.License, b.License))
	})
	if len(s.Licenses) > maxLicenses {
		s.LicensesOmitted = len(s.Licenses) - maxLicenses
		s.Licenses = s.Licenses[:maxLicenses]
	}

	s.Overview = fmt.Sprintf("This report covers %s and %s: %s, %d open, and %s. It is part of a signed bundle.",
		count(len(s.Repos), "repository", "repositories"), count(len(s.Images), "image", "images"),
		count(s.Findings, "finding", "findings"), s.Open, count(s.Packages, "component", "components"))
	s.ComponentTotals = fmt.Sprintf("%s in all; %d without a declared license.", count(s.Packages, "component", "components"), s.Unlicensed)

	s.Charts = []*chart{
		severityChart(s.BySeverity[:len(severities)]),
		ruleChart(byRule),
		historyChart(history, rel.Created),
	}
	return s, nil
}

func (c *countRow) add(state string) {
	switch state {
	case stateOpen:
		c.Open++
	case stateWaived:
		c.Waived++
	default:
		c.Suppressed++
	}
	c.Total++
}

func levelRank(name string) int {
	l, _ := scanner.ParseLevel(name)
	return int(l)
}

// Watermark is the line every page of a summary carries: who it was
// prepared for, and the ticket.
func Watermark(to reports.Recipient) string {
	return "Prepared for " + to.TenantName + " · ticket " + to.Ticket
}

func engines(runs []scanner.EngineRun) string {
	parts := make([]string, len(runs))
	for i, e := range runs {
		parts[i] = e.ID + " " + e.Version
	}
	return strings.Join(parts, ", ")
}

// reasons sums up a gate decision's reasons by code ("FINDING ×2,
// LICENSE_DENIED").
func reasons(d *ci.Decision) string {
	var codes []string
	count := map[string]int{}
	for _, r := range d.Reasons {
		if count[r.Code] == 0 {
			codes = append(codes, r.Code)
		}
		count[r.Code]++
	}
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = c
		if count[c] > 1 {
			parts[i] += fmt.Sprintf(" ×%d", count[c])
		}
	}
	return strings.Join(parts, ", ")
}

// covers says what a waiver applies to.
func covers(w ci.Waiver) string {
	var parts []string
	if w.Rule != "" {
		parts = append(parts, "rule "+w.Rule)
	}
	if w.Fingerprint != "" {
		parts = append(parts, "fingerprint "+w.Fingerprint)
	}
	if w.Path != "" {
		parts = append(parts, "in "+w.Path)
	}
	return strings.Join(parts, " ")
}

// count says "1 image" or "3 images".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
