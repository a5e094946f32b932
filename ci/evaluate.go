package ci

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/vigil-sec/vigil/scanner"
)

// Decisions. Evaluate returns Pass or Fail (Unknown for a missing result);
// Pending is for a gate whose scan has not finished.
const (
	Pass    = "pass"
	Fail    = "fail"
	Pending = "pending"
	Unknown = "unknown"
)

// Reason codes.
const (
	CodeFinding       = "FINDING"               // a finding fails the gate
	CodeLicenseDenied = "LICENSE_DENIED"        // a component is under a denied license
	CodeWaiverExpired = "WAIVER_EXPIRED"        // a waiver in the policy has expired
	CodePassed        = "PASSED"                // nothing fails the gate
	CodeNoResult      = "NO_RESULT"             // there is no scan result to Judge
	CodeNotAnalysed   = scanner.CodeNotAnalysed // an engine could not analyse a part of the target
)

// Decision is the gate's verdict with the reasons for it. Reasons is never
// empty.
type Decision struct {
	Decision string   `json:"decision"`
	Reasons  []Reason `json:"reasons"`
}

// Passed reports whether the gate passed.
func (d *Decision) Passed() bool { return d != nil && d.Decision == Pass }

// Reason is one reason for a decision.
type Reason struct {
	Code        string `json:"code"`
	Message     string `json:"message"`
	RuleID      string `json:"rule_id,omitempty"`
	File        string `json:"file,omitempty"`
	Line        int    `json:"line,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	Component   string `json:"component,omitempty"`
	// Engine is the engine that could not analyse Path (NOT_ANALYSED).
	Engine string `json:"engine,omitempty"`
	// Path is the part of the target that was not analysed (NOT_ANALYSED).
	Path string `json:"path,omitempty"`
}

// Evaluate applies the policy and the baseline to a scan result and decides
// the gate. A nil policy means DefaultPolicy, a nil baseline means none.
//
// It changes res.Findings in place:
//   - findings whose rule is in p.Rules.Exclude or whose file matches a
//     glob in p.Paths.Exclude are dropped;
//   - every waiver active at now adds an external Suppression to the
//     findings it matches and marks them Suppressed;
//   - with a baseline, Status is set to unchanged for findings whose
//     fingerprint is in it and new for the rest;
//   - findings are sorted as scanner.SortFindings does.
//
// Evaluate owns external suppressions and Status: it removes those an
// earlier evaluation set before applying its own, so evaluating a stored
// result again with newer waivers or another baseline gives the right
// answer (an expired waiver stops suppressing; no baseline clears Status).
//
// The gate fails when a finding is not suppressed (in source or by an
// active waiver), not unchanged, and at or above both p.FailOn.Severity
// and p.FailOn.Confidence; or when an SBOM component has a denied license.
// A license counts as denied when any SPDX license ID in its expression is
// on p.Licenses.Deny, compared case-insensitively: "MIT OR GPL-2.0-only"
// is denied when GPL-2.0-only is, even though the OR would allow MIT. IDs
// are compared whole ("GPL-2.0+" is not "GPL-2.0"), and the exception of a
// WITH clause is not a license.
//
// Every part of the target an engine could not analyse (res.Unanalysed)
// gives a NOT_ANALYSED reason naming it: it fails the gate unless
// p.Unanalysed is UnanalysedWarn, which lets the gate pass and keeps the
// reason beside PASSED. A part nobody analysed never passes silently.
//
// Every expired waiver in the policy is reported, whether or not it matched
// anything and whatever the decision. A nil result decides Unknown.
func Evaluate(res *scanner.Result, p *Policy, base *Baseline, now time.Time) *Decision {
	if p == nil {
		p = DefaultPolicy()
	}
	if res == nil {
		return &Decision{Decision: Unknown, Reasons: []Reason{{
			Code:    CodeNoResult,
			Message: "no scan result to evaluate; the gate cannot pass without one",
		}}}
	}

	before := len(res.Findings)
	res.Findings = slices.DeleteFunc(res.Findings, func(f scanner.Finding) bool { return p.excludes(&f) })
	excluded := before - len(res.Findings)
	scanner.SortFindings(res.Findings)

	active := make([]bool, len(p.Waivers))
	for i := range p.Waivers {
		active[i] = p.Waivers[i].Active(now)
	}

	var failing, lapsed []Reason
	var suppressed, unchanged, below int
	for i := range res.Findings {
		f := &res.Findings[i]
		resetExternal(f)
		var expiredNotes []string
		for j := range p.Waivers {
			w := &p.Waivers[j]
			if !w.matches(f) {
				continue
			}
			if !active[j] {
				expiredNotes = append(expiredNotes, fmt.Sprintf("waivers[%d] expired at the end of %s", j, w.expiresDay()))
				continue
			}
			f.Suppressions = append(f.Suppressions, scanner.Suppression{
				Kind:          scanner.SuppressionExternal,
				Justification: w.Reason,
				Owner:         w.Owner,
				Expires:       w.expiresDay(),
			})
			f.Suppressed = true
		}
		switch {
		case base == nil:
			f.Status = ""
		case base.Contains(f.Fingerprint):
			f.Status = scanner.StatusUnchanged
		default:
			f.Status = scanner.StatusNew
		}

		switch {
		case f.Suppressed:
			suppressed++
		case f.Status == scanner.StatusUnchanged:
			unchanged++
		case f.Severity < p.FailOn.Severity || f.Confidence < p.FailOn.Confidence:
			below++
		default:
			msg := fmt.Sprintf("%s (%s severity, %s confidence) at %s:%d: %s",
				f.RuleID, f.Severity, f.Confidence, f.File, f.Line, f.Message)
			if len(expiredNotes) > 0 {
				msg += " (" + strings.Join(expiredNotes, "; ") + ")"
			}
			failing = append(failing, Reason{
				Code: CodeFinding, Message: msg,
				RuleID: f.RuleID, File: f.File, Line: f.Line, Fingerprint: f.Fingerprint,
			})
		}
	}

	failing = append(failing, p.deniedComponents(res.SBOM)...)

	var notAnalysed []Reason
	for _, u := range res.Unanalysed {
		notAnalysed = append(notAnalysed, Reason{
			Code:    CodeNotAnalysed,
			Message: fmt.Sprintf("%s could not analyse %s, so nothing is known about it: %s", u.Engine, describePart(u.Path), u.Reason),
			Engine:  u.Engine,
			Path:    u.Path,
		})
	}
	if p.Unanalysed != UnanalysedWarn {
		failing = append(failing, notAnalysed...)
		notAnalysed = nil
	}

	for i := range p.Waivers {
		if !active[i] {
			lapsed = append(lapsed, p.expiredReason(i))
		}
	}

	if len(failing) > 0 {
		return &Decision{Decision: Fail, Reasons: append(failing, lapsed...)}
	}
	passed := Reason{Code: CodePassed, Message: p.passMessage(res.SBOM, len(res.Findings), suppressed, unchanged, below, excluded)}
	if len(notAnalysed) > 0 {
		passed.Message += fmt.Sprintf("; %d %s not analysed, which the policy lets pass (unanalysed: %s)", len(notAnalysed), plural(len(notAnalysed), "part"), UnanalysedWarn)
	}
	return &Decision{Decision: Pass, Reasons: slices.Concat([]Reason{passed}, notAnalysed, lapsed)}
}

// describePart names a part of the target in a message: "the root
// folder" or "svc".
func describePart(path string) string {
	if path == "." || path == "" {
		return "the target's root"
	}
	return path
}

// excludes reports whether the policy drops the finding.
func (p *Policy) excludes(f *scanner.Finding) bool {
	for _, r := range p.Rules.Exclude {
		if strings.EqualFold(r, f.RuleID) {
			return true
		}
	}
	for _, g := range p.Paths.Exclude {
		// A bad glob matches nothing, which keeps the finding: fail closed.
		if ok, _ := doublestar.Match(g, f.File); ok {
			return true
		}
	}
	return false
}

// matches reports whether the waiver covers the finding, ignoring expiry.
func (w *Waiver) matches(f *scanner.Finding) bool {
	if w.Rule == "" && w.Fingerprint == "" {
		return false // never a blanket waiver
	}
	if w.Fingerprint != "" && w.Fingerprint != f.Fingerprint {
		return false
	}
	if w.Rule != "" && !strings.EqualFold(w.Rule, f.RuleID) {
		return false
	}
	if w.Path != "" {
		if ok, _ := doublestar.Match(w.Path, f.File); !ok {
			return false
		}
	}
	return true
}

// resetExternal removes the waivers an earlier evaluation applied.
func resetExternal(f *scanner.Finding) {
	f.Suppressions = slices.DeleteFunc(f.Suppressions, func(s scanner.Suppression) bool {
		return s.Kind == scanner.SuppressionExternal
	})
	if len(f.Suppressions) == 0 {
		f.Suppressions = nil
	}
	f.Suppressed = len(f.Suppressions) > 0
}

// describe names what a waiver matches: "rule G404 on cmd/**".
func (w *Waiver) describe() string {
	var parts []string
	if w.Rule != "" {
		parts = append(parts, "rule "+w.Rule)
	}
	if w.Fingerprint != "" {
		parts = append(parts, "fingerprint "+w.Fingerprint)
	}
	s := strings.Join(parts, " and ")
	if w.Path != "" {
		s += " on " + w.Path
	}
	return s
}

func (p *Policy) expiredReason(i int) Reason {
	w := &p.Waivers[i]
	where := fmt.Sprintf("waivers[%d]", i)
	if src := cmp.Or(w.Source, p.Source); src != "" && w.Line > 0 {
		where = fmt.Sprintf("%s (%s:%d)", where, src, w.Line)
	}
	return Reason{
		Code: CodeWaiverExpired,
		Message: fmt.Sprintf("%s for %s, owned by %s, expired at the end of %s and no longer applies",
			where, w.describe(), w.Owner, w.expiresDay()),
		RuleID:      w.Rule,
		Fingerprint: w.Fingerprint,
	}
}

// deniedComponents returns a LICENSE_DENIED reason for each component with
// a denied license, sorted by component and version.
func (p *Policy) deniedComponents(sbom *scanner.SBOM) []Reason {
	if sbom == nil || len(p.Licenses.Deny) == 0 {
		return nil
	}
	var out []Reason
	for _, c := range sbom.Components {
		var denied, declared []string
		for _, lic := range c.Licenses {
			ids := p.deniedIDs(lic)
			if len(ids) == 0 {
				continue
			}
			declared = append(declared, lic)
			for _, id := range ids {
				if !slices.Contains(denied, id) {
					denied = append(denied, id)
				}
			}
		}
		if len(denied) == 0 {
			continue
		}
		name := c.Name
		if c.Version != "" {
			name += "@" + c.Version
		}
		msg := fmt.Sprintf("component %s is under %s, which the policy denies", name, strings.Join(denied, ", "))
		if len(declared) > 1 || declared[0] != denied[0] { // an expression, or more than one license
			msg += fmt.Sprintf(" (declared: %s)", strings.Join(declared, "; "))
		}
		out = append(out, Reason{Code: CodeLicenseDenied, Message: msg, Component: name})
	}
	slices.SortStableFunc(out, func(a, b Reason) int {
		return cmp.Or(cmp.Compare(a.Component, b.Component), cmp.Compare(a.Message, b.Message))
	})
	return out
}

// deniedIDs returns the license IDs in an SPDX expression that the policy
// denies, as written in the expression.
func (p *Policy) deniedIDs(expr string) []string {
	var out []string
	for _, id := range licenseIDs(expr) {
		if slices.ContainsFunc(p.Licenses.Deny, func(d string) bool { return strings.EqualFold(d, id) }) {
			out = append(out, id)
		}
	}
	return out
}

// licenseIDs splits an SPDX license expression into its license IDs,
// leaving out the operators and the exceptions named after WITH.
func licenseIDs(expr string) []string {
	fields := strings.Fields(strings.NewReplacer("(", " ", ")", " ").Replace(expr))
	var ids []string
	for i := 0; i < len(fields); i++ {
		switch strings.ToUpper(fields[i]) {
		case "AND", "OR":
		case "WITH":
			i++ // skip the exception
		default:
			ids = append(ids, fields[i])
		}
	}
	return ids
}

func (p *Policy) passMessage(sbom *scanner.SBOM, total, suppressed, unchanged, below, excluded int) string {
	msg := fmt.Sprintf("no finding at or above %s severity and %s confidence", p.FailOn.Severity, p.FailOn.Confidence)
	var parts []string
	for _, c := range []struct {
		n    int
		what string
	}{{suppressed, "suppressed"}, {unchanged, "unchanged"}, {below, "below the thresholds"}} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}
	switch {
	case total == 0:
		msg += "; no findings"
	default:
		msg += fmt.Sprintf("; %d %s: %s", total, plural(total, "finding"), strings.Join(parts, ", "))
	}
	if excluded > 0 {
		msg += fmt.Sprintf("; %d excluded by the policy", excluded)
	}
	switch {
	case len(p.Licenses.Deny) == 0:
	case sbom == nil:
		msg += "; no SBOM, so licenses were not checked"
	default:
		msg += fmt.Sprintf("; no component under a denied license (%d %s)", len(sbom.Components), plural(len(sbom.Components), "component"))
	}
	return msg
}

func plural(n int, s string) string {
	if n == 1 {
		return s
	}
	return s + "s"
}
