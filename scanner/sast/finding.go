package sast

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/securego/gosec/v2/issue"

	"github.com/vigil-sec/vigil/scanner"
)

// Fingerprint identifies a finding across commits. ruleID is the gosec
// rule ("G404"), file the slash-separated path relative to the target
// root, code the source text of the flagged lines (Line through EndLine)
// and occurrence the finding's index, from 0 in file order, among the
// findings in the same file with the same rule and normalised code.
//
// The fingerprint is the first 32 hex digits of the SHA-256 of
//
//	"sast" NUL ruleID NUL file NUL normalised code NUL decimal occurrence
//
// where the code is normalised by collapsing every run of white space,
// line breaks included, to one space and trimming both ends. Line numbers
// play no part, so the fingerprint survives code moving up or down and
// edits elsewhere in the file, while a change to the flagged lines, to the
// file's path or to the rule gives a new one. The occurrence keeps two
// identical flagged lines in one file apart.
func Fingerprint(ruleID, file, code string, occurrence int) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%d", ID, ruleID, file, normalizeCode(code), occurrence)
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// normalizeCode collapses white space, so that re-indenting or
// reformatting a line keeps its fingerprint.
func normalizeCode(code string) string {
	return strings.Join(strings.Fields(code), " ")
}

// item is a finding before its fingerprint: the finding and the
// normalised source text of its flagged lines.
type item struct {
	F    scanner.Finding `json:"f"`
	Code string          `json:"code"`
}

// toItems maps one package's gosec issues to items. Issues in files
// outside root (which gosec only reports for files the go command
// generates) are dropped, with a warning.
func toItems(root string, issues []*issue.Issue) (items []item, warnings []string) {
	src := sourceCache{}
	items = make([]item, 0, len(issues))
	for _, iss := range issues {
		file, ok := relPath(root, iss.File)
		if !ok {
			warnings = append(warnings, fmt.Sprintf("%s finding in %s, outside the target, dropped", iss.RuleID, iss.File))
			continue
		}
		line, end := parseLines(iss.Line)
		col, _ := strconv.Atoi(iss.Col)
		f := scanner.Finding{
			Engine:     ID,
			RuleID:     iss.RuleID,
			Message:    iss.What,
			Severity:   level(iss.Severity),
			Confidence: level(iss.Confidence),
			File:       file,
			Line:       line,
			Column:     col,
			Snippet:    iss.Code,
		}
		if iss.Cwe != nil && iss.Cwe.ID != "" {
			f.CWE = "CWE-" + iss.Cwe.ID
		}
		if end > line {
			f.EndLine = end
		}
		for _, s := range iss.Suppressions {
			f.Suppressions = append(f.Suppressions, scanner.Suppression{
				Kind:          scanner.SuppressionKind(s.Kind),
				Justification: s.Justification,
			})
		}
		f.Suppressed = len(f.Suppressions) > 0
		items = append(items, item{F: f, Code: normalizeCode(src.lines(iss.File, line, end, iss.Code))})
	}
	return items, warnings
}

// fingerprint merges the items of every package into findings sorted as
// scanner.SortFindings sorts them, and fingerprints them. A file belongs
// to one package, so the occurrence numbers, counted in file order, do
// not depend on how the items were split.
func fingerprint(parts ...[]item) []scanner.Finding {
	var items []item
	for _, p := range parts {
		items = append(items, p...)
	}
	// The same order as scanner.SortFindings, which is also the file order
	// that numbers the occurrences.
	slices.SortStableFunc(items, func(a, b item) int {
		return cmp.Or(
			cmp.Compare(a.F.File, b.F.File),
			cmp.Compare(a.F.Line, b.F.Line),
			cmp.Compare(a.F.Column, b.F.Column),
			cmp.Compare(a.F.RuleID, b.F.RuleID),
			// Two rules' issues never tie on all four; one rule's may
			// (a call flagged twice): order them by their text too.
			cmp.Compare(a.F.Message, b.F.Message),
			cmp.Compare(a.Code, b.Code),
		)
	})
	type key struct{ rule, file, code string }
	seen := make(map[key]int)
	findings := make([]scanner.Finding, len(items))
	for i, it := range items {
		k := key{it.F.RuleID, it.F.File, it.Code}
		it.F.Fingerprint = Fingerprint(k.rule, k.file, k.code, seen[k])
		seen[k]++
		findings[i] = it.F
	}
	return findings
}

// sourceCache holds the lines of the files findings point into.
type sourceCache map[string][]string

// lines returns the text of lines start to end of file. When the file
// cannot be read it falls back to those lines of gosec's snippet, which
// numbers each line ("12: code").
func (c sourceCache) lines(file string, start, end int, snippet string) string {
	lines, ok := c[file]
	if !ok {
		if data, err := os.ReadFile(file); err == nil {
			lines = strings.Split(string(data), "\n")
		}
		c[file] = lines
	}
	if start >= 1 && start <= end && end <= len(lines) {
		return strings.Join(lines[start-1:end], "\n")
	}
	var b strings.Builder
	for l := range strings.SplitSeq(snippet, "\n") {
		num, text, ok := strings.Cut(l, ": ")
		if n, err := strconv.Atoi(num); ok && err == nil && n >= start && n <= end {
			b.WriteString(text)
			b.WriteByte('\n')
		}
	}
	if b.Len() == 0 {
		return snippet
	}
	return b.String()
}

// parseLines reads gosec's line, "12" or a range "12-14".
func parseLines(s string) (start, end int) {
	a, b, isRange := strings.Cut(s, "-")
	start, _ = strconv.Atoi(a)
	end = start
	if isRange {
		if n, err := strconv.Atoi(b); err == nil && n >= start {
			end = n
		}
	}
	return start, end
}

// relPath returns file relative to root, slash-separated, and whether file
// is inside root.
func relPath(root, file string) (string, bool) {
	if rel, ok := relInside(root, file); ok {
		return rel, true
	}
	// The go command may report paths with symbolic links resolved.
	r, err1 := filepath.EvalSymlinks(root)
	f, err2 := filepath.EvalSymlinks(file)
	if err1 != nil || err2 != nil {
		return "", false
	}
	return relInside(r, f)
}

func relInside(root, file string) (string, bool) {
	rel, err := filepath.Rel(root, file)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", false
	}
	return filepath.ToSlash(rel), true
}

// level maps a gosec score to a scanner level.
func level(s issue.Score) scanner.Level {
	switch s {
	case issue.Low:
		return scanner.LevelLow
	case issue.Medium:
		return scanner.LevelMedium
	case issue.High:
		return scanner.LevelHigh
	default:
		return scanner.LevelUnknown
	}
}
