// Package sast is Vigil's static analysis engine: it runs gosec as a
// library on a Go module and reports what it finds as scanner.Findings.
//
// Engine returns the scanner.Engine that cmd/vigil registers under the ID
// "sast". It applies to Dir and Git targets with a go.mod at their root.
//
// # How a scan runs
//
// The gosec CLI loads every package separately, and each load runs its own
// `go list -deps -export`; on large modules that is most of its time. The
// engine instead does one packages.Load of "./..." (mode gosec.LoadMode,
// run in the target's root), then analyses the loaded packages in parallel
// across Config.Concurrency workers. Each worker owns a *gosec.Analyzer with
// every gosec rule (rules.Generate) and every analyzer (analyzers.Generate,
// the SSA and taint analysers included) and calls its CheckRules and
// CheckAnalyzers per package; the workers' reports are merged at the end.
// No gosec binary is run.
//
// With the default Config the results equal those of the gosec CLI run as
// `gosec ./...` in the target's root, with two differences in what is
// scanned: "./..." follows the go command's rules, so testdata folders,
// folders starting with "_" or "." and nested modules are not scanned (the
// CLI walks folders itself and scans them).
//
// Package load and type errors do not stop the scan: they become
// Output.Warnings, as the CLI reports them beside its findings. A failure
// of `go list` itself (no go command, a broken go.mod) is an error.
//
// gosec cannot be cancelled; Run returns ctx.Err() as soon as ctx is done
// and lets the packages being analysed finish in the background, starting
// no new ones.
//
// # Suppressions
//
// Findings covered by a #nosec comment (or //gosec:disable) are kept, with
// Suppressed set and a Suppression of kind "inSource" carrying the comment's
// justification (the text after "--").
//
// # Fingerprints
//
// Every finding has a fingerprint that stays the same across commits as
// long as the flagged code does; see Fingerprint.
package sast
