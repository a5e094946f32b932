package format

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/vigil-sec/vigil/scanner"
)

// maxMessage bounds a finding's message in the table; JSON and SARIF keep
// it whole.
const maxMessage = 80

// WriteTable writes the result for a person reading a terminal or a CI log.
func WriteTable(w io.Writer, res *scanner.Result, gate *Gate) error {
	var b strings.Builder
	t := res.Target
	fmt.Fprintf(&b, "Target:  %s %s", t.Kind, t.Ref)
	if t.Commit != "" {
		fmt.Fprintf(&b, " @ %s", t.Commit)
	}
	if t.Digest != "" {
		fmt.Fprintf(&b, " @ %s", t.Digest)
	}
	if t.Platform != "" {
		fmt.Fprintf(&b, " (%s)", t.Platform)
	}
	b.WriteString("\n")
	for _, e := range res.Engines {
		fmt.Fprintf(&b, "Engine:  %s %s, %.1fs\n", e.ID, e.Version, e.Seconds)
		for _, warn := range e.Warnings {
			fmt.Fprintf(&b, "         warning: %s\n", warn)
		}
	}

	if slices.ContainsFunc(res.Engines, func(e scanner.EngineRun) bool { return e.ID == "sast" }) {
		suppressed := 0
		for _, f := range res.Findings {
			if f.Suppressed {
				suppressed++
			}
		}
		fmt.Fprintf(&b, "\nFindings: %d (%d suppressed)\n", len(res.Findings), suppressed)
		if len(res.Findings) > 0 {
			tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEVERITY\tCONFIDENCE\tRULE\tLOCATION\tSTATUS\tMESSAGE")
			for _, f := range res.Findings {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s:%d:%d\t%s\t%s\n",
					strings.ToUpper(f.Severity.String()), strings.ToUpper(f.Confidence.String()),
					f.RuleID, f.File, f.Line, f.Column, status(f), clip(f.Message, maxMessage))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
	}

	if len(res.Unanalysed) > 0 {
		fmt.Fprintf(&b, "\nNot analysed: %d %s (nothing is known about %s)\n", len(res.Unanalysed),
			plural(len(res.Unanalysed), "part"), pronoun(len(res.Unanalysed)))
		for _, u := range res.Unanalysed {
			fmt.Fprintf(&b, "  - %s (%s): %s\n", u.Path, u.Engine, oneLine(u.Reason))
		}
	}

	if res.SBOM != nil {
		byType := map[string]int{}
		for _, c := range res.SBOM.Components {
			byType[c.Type]++
		}
		parts := make([]string, 0, len(byType))
		for _, typ := range slices.SortedFunc(maps.Keys(byType), func(a, b string) int {
			return cmp.Or(cmp.Compare(byType[b], byType[a]), cmp.Compare(a, b))
		}) {
			parts = append(parts, fmt.Sprintf("%s %d", typ, byType[typ]))
		}
		fmt.Fprintf(&b, "\nSBOM: %d components", len(res.SBOM.Components))
		if len(parts) > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(parts, ", "))
		}
		b.WriteString("\n")
	}

	if gate != nil {
		b.WriteString("\n")
		writeGate(&b, gate)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteGate writes the gate's decision and reasons as the table ends
// with them: what `vigil scan` prints on stderr when every report goes to
// a file, so that a CI log still says why the gate failed.
func WriteGate(w io.Writer, gate *Gate) error {
	var b strings.Builder
	writeGate(&b, gate)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeGate(b *strings.Builder, gate *Gate) {
	fmt.Fprintf(b, "Gate: %s\n", strings.ToUpper(gate.Decision))
	for _, r := range gate.Reasons {
		fmt.Fprintf(b, "  - %s: %s\n", r.Code, oneLine(r.Message))
	}
}

func status(f scanner.Finding) string {
	var s []string
	if f.Status != "" {
		s = append(s, string(f.Status))
	}
	for _, sup := range f.Suppressions {
		switch sup.Kind {
		case scanner.SuppressionInSource:
			s = append(s, "nosec")
		case scanner.SuppressionExternal:
			s = append(s, "waived")
		}
	}
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}

func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func plural(n int, s string) string {
	if n == 1 {
		return s
	}
	return s + "s"
}

func pronoun(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

// oneLine joins a multi-line reason (the go command's output) into one
// line for the table.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
