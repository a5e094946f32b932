package scanner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Engine is one scan engine. Engines are registered in a table (see
// cmd/vigil) and selected by ID.
type Engine struct {
	// ID is what --engines names: "sast", "sbom".
	ID string
	// Version is the version of the library the engine embeds.
	Version string
	// Applies reports whether the engine can scan the target.
	Applies func(*Target) bool
	// Scans says what the engine can scan, for the error that names a
	// target it does not apply to ("Go modules: a go.mod at the target
	// root").
	Scans string
	// Run scans the target. It must return when ctx is cancelled.
	Run func(ctx context.Context, t *Target) (*Output, error)
	// Config names the settings that change the engine's output, for
	// the scan cache's key ("tests=false go=go1.26.8").
	Config string
	// Codec stores the engine's output in the scan cache (Options.Cache);
	// nil means the engine's output is never cached.
	Codec *Codec
}

// Output is what one engine found.
type Output struct {
	Findings []Finding
	SBOM     *SBOM
	Warnings []string
	// Unanalysed are the parts of the target the engine could not
	// analyse (a Go module that does not load). Unlike warnings they
	// reach the gate, which fails on them unless the policy says
	// otherwise: a part nobody analysed must never read as clean.
	Unanalysed []Unanalysed
}

// ErrUsage marks errors in what the user asked for (an unknown engine, a
// bad target): the CLI maps it to exit code 2.
var ErrUsage = errors.New("usage error")

// UsageMessage is err's text without the "usage error: " that wrapping
// ErrUsage adds, for an edge that says the kind of error itself (an exit
// code, an HTTP status).
func UsageMessage(err error) string {
	return strings.ReplaceAll(err.Error(), ErrUsage.Error()+": ", "")
}

// EngineError is an engine failing on a target: the CLI maps it to exit
// code 3.
type EngineError struct {
	Engine string
	Err    error
}

func (e *EngineError) Error() string { return e.Engine + ": " + e.Err.Error() }
func (e *EngineError) Unwrap() error { return e.Err }

// Select picks engines by ID from the registry. With no IDs it returns
// every engine that applies to the target; an ID that names no engine, or
// an engine that cannot scan the target, is a usage error.
func Select(registry []Engine, ids []string, t *Target) ([]Engine, error) {
	if len(ids) == 0 {
		var out []Engine
		for _, e := range registry {
			if e.Applies == nil || e.Applies(t) {
				out = append(out, e)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("%w: no engine applies to %s target %q", ErrUsage, t.Kind, t.Ref)
		}
		return out, nil
	}
	var out []Engine
	for _, id := range ids {
		id = strings.TrimSpace(id)
		i := slices.IndexFunc(registry, func(e Engine) bool { return e.ID == id })
		if i < 0 {
			known := make([]string, len(registry))
			for j, e := range registry {
				known[j] = e.ID
			}
			return nil, fmt.Errorf("%w: unknown engine %q: want one of %s", ErrUsage, id, strings.Join(known, ", "))
		}
		e := registry[i]
		if e.Applies != nil && !e.Applies(t) {
			msg := fmt.Sprintf("engine %q does not apply to %s target %q", id, t.Kind, t.Ref)
			if e.Scans != "" {
				msg += "; it scans " + e.Scans
			}
			return nil, fmt.Errorf("%w: %s", ErrUsage, msg)
		}
		if !slices.ContainsFunc(out, func(o Engine) bool { return o.ID == id }) {
			out = append(out, e)
		}
	}
	return out, nil
}
