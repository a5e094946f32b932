package scanner

import "time"

// Result is the whole outcome of scanning one target.
type Result struct {
	Target     TargetInfo  `json:"target"`
	StartedAt  time.Time   `json:"started_at"`
	FinishedAt time.Time   `json:"finished_at"`
	Engines    []EngineRun `json:"engines"`
	// Findings are sorted by file, line, column and rule.
	Findings []Finding `json:"findings"`
	SBOM     *SBOM     `json:"sbom,omitempty"`
	// Unanalysed lists the parts of the target an engine could not
	// analyse, sorted by path and engine. Findings say nothing about
	// them; the gate fails on them by default (see ci.Policy).
	Unanalysed []Unanalysed `json:"unanalysed,omitempty"`
}

// CodeNotAnalysed is the code that names a part of a target no engine
// analysed, in a gate's reasons (ci) and in SARIF notifications (format).
const CodeNotAnalysed = "NOT_ANALYSED"

// Unanalysed is a part of a target that an engine could not analyse, such
// as a Go module whose packages the go command cannot load.
type Unanalysed struct {
	Engine string `json:"engine"`
	// Path is the part's folder or file relative to the target root,
	// slash-separated; "." is the root.
	Path string `json:"path"`
	// Reason says why, in the words of the tool that failed.
	Reason string `json:"reason"`
}

// EngineRun records one engine's part in a scan.
type EngineRun struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	// Seconds is the engine's wall time.
	Seconds float64 `json:"seconds"`
	// Cached says the output was read from the scan cache: the same
	// engine version and configuration scanned the same content before.
	Cached bool `json:"cached,omitempty"`
	// Warnings are problems that did not stop the engine, such as a file
	// that failed to parse.
	Warnings []string `json:"warnings,omitempty"`
}
