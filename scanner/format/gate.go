package format

// Gate is the gate decision a report shows, as plain data: the format
// package prints a decision but does not make one (package ci does; its
// callers convert a ci.Decision, whose JSON this matches field for field).
type Gate struct {
	Decision string       `json:"decision"`
	Reasons  []GateReason `json:"reasons"`
}

// GateReason is one reason for a gate decision.
type GateReason struct {
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
