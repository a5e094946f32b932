package scanner

import (
	"fmt"
	"strings"
)

// Level is a severity or a confidence: low < medium < high.
type Level int

// The levels, in order. The zero value is LevelUnknown, below every other.
const (
	LevelUnknown Level = iota
	LevelLow
	LevelMedium
	LevelHigh
)

var levelNames = [...]string{"unknown", "low", "medium", "high"}

// String returns the level's lower-case name.
func (l Level) String() string {
	if l < 0 || int(l) >= len(levelNames) {
		return "unknown"
	}
	return levelNames[l]
}

// ParseLevel reads a level name, case-insensitively ("HIGH", "medium").
func ParseLevel(s string) (Level, error) {
	for i, n := range levelNames[1:] {
		if strings.EqualFold(strings.TrimSpace(s), n) {
			return Level(i + 1), nil
		}
	}
	return LevelUnknown, fmt.Errorf("unknown level %q: want low, medium or high", s)
}

// MarshalText writes the level's name.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText reads a level's name; "unknown" and "" read as LevelUnknown.
func (l *Level) UnmarshalText(b []byte) error {
	if s := string(b); s == "" || strings.EqualFold(s, "unknown") {
		*l = LevelUnknown
		return nil
	}
	v, err := ParseLevel(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// Status says how a finding relates to a baseline.
type Status string

// Statuses. A finding has no status when no baseline was given.
const (
	StatusNew       Status = "new"       // not in the baseline: it may fail the gate
	StatusUnchanged Status = "unchanged" // in the baseline: it never fails a change gate
)

// SuppressionKind says where a suppression comes from (as in SARIF).
type SuppressionKind string

// Suppression kinds.
const (
	SuppressionInSource SuppressionKind = "inSource" // a #nosec comment in the code
	SuppressionExternal SuppressionKind = "external" // a waiver in the policy
)

// Suppression records why a finding does not count.
type Suppression struct {
	Kind          SuppressionKind `json:"kind"`
	Justification string          `json:"justification,omitempty"`
	// Owner and Expires are set for waivers.
	Owner   string `json:"owner,omitempty"`
	Expires string `json:"expires,omitempty"` // YYYY-MM-DD, the last day the waiver applies
}

// Finding is one issue that a SAST engine reported.
type Finding struct {
	Engine     string `json:"engine"`
	RuleID     string `json:"rule_id"`
	Message    string `json:"message"`
	CWE        string `json:"cwe,omitempty"` // "CWE-338"
	Severity   Level  `json:"severity"`
	Confidence Level  `json:"confidence"`
	// File is slash-separated and relative to the target root.
	File    string `json:"file"`
	Line    int    `json:"line"`
	EndLine int    `json:"end_line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Snippet string `json:"snippet,omitempty"`
	// Fingerprint identifies the finding across commits: it depends on the
	// rule, the file and the normalised code that was flagged, not on line
	// numbers, so moving code or editing elsewhere in the file keeps it.
	Fingerprint string `json:"fingerprint"`
	// Suppressed is true when a #nosec comment or an active waiver covers
	// the finding; Suppressions says which.
	Suppressed   bool          `json:"suppressed"`
	Suppressions []Suppression `json:"suppressions,omitempty"`
	// Status is set when the scan was compared with a baseline.
	Status Status `json:"status,omitempty"`
}

// SuppressedInSource reports whether a #nosec comment covers the finding.
func (f *Finding) SuppressedInSource() bool {
	for _, s := range f.Suppressions {
		if s.Kind == SuppressionInSource {
			return true
		}
	}
	return false
}

// FingerprintKey names Vigil's fingerprint among a SARIF result's
// partialFingerprints.
const FingerprintKey = "vigilFingerprint/v1"
