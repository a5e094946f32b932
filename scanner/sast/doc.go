// Package sast is Vigil's static analysis engine: it runs gosec as a
// library on a Go module and reports what it finds as scanner.Findings.
//
// Engine returns the scanner.Engine that cmd/vigil registers under the ID
// "sast". It applies to Dir and Git targets with a go.mod or a go.work at
// their root.
//
// # How a scan runs
//
// The engine first finds every Go module in the tree (findModules): the
// root module, every folder below it with a go.mod (nested modules), and
// every module a go.work in the tree uses. Folders the go command's "./..."
// skips (vendor, testdata, names starting with "." or "_") are skipped
// unless a go.work uses them. Each module is then loaded in its own folder,
// with GOWORK set to the go.work that uses it or "off".
//
// The gosec CLI loads every package separately, and each load runs its own
// `go list -deps -export`; on large modules that is most of its time. The
// engine instead runs one `go list -deps -export -compiled` per module
// (packages.Load in listMode: files, imports and export data, no syntax),
// then analyses the module's packages in parallel across
// Config.Concurrency workers. A worker parses and type-checks one package
// at a time, typing its imports from the export data the go command
// compiled (as packages.Load and the gosec CLI do), runs gosec on it and
// lets its syntax and types go; imported types are shared by a batch of
// packages (importBatch) and then dropped, so the scan's memory does not
// grow with the module. Each worker owns a *gosec.Analyzer with every
// gosec rule (rules.Generate) and every analyzer (analyzers.Generate, the
// SSA and taint analysers included) and calls its CheckRules and
// CheckAnalyzers per package; the workers' reports are merged at the end.
// No gosec binary is run.
//
// Export data is compiled without -trimpath, so a scan reuses what the
// pipeline's `go build ./...` left in Go's build cache; Config.TrimPath
// compiles it with -trimpath, for build caches shared across checkouts.
//
// With the default Config the results equal those of the gosec CLI run as
// `gosec ./...` in the target's root (TestMatchesGosecCLI, nested modules
// and workspaces included), with one difference in what is scanned: the
// CLI walks every folder but vendor, and so also scans testdata folders
// and folders starting with "_" or "."; the engine follows the go
// command's rules there.
//
// Package load and type errors do not stop the scan: they become
// Output.Warnings, as the CLI reports them beside its findings. A module
// the go command cannot load at all (a go.mod that does not parse, a go
// line newer than the toolchain) becomes an Output.Unanalysed part with
// the go command's reason, and the other modules are still analysed; the
// gate fails on such a part unless the policy says otherwise. No go
// command at all is an error.
//
// Config.Untrusted hardens every go command for code nobody vouched for
// (the server's workers): GOTOOLCHAIN=local, CGO_ENABLED=0,
// GOFLAGS=-mod=readonly -buildvcs=false, GOVCS=*:off, the dependencies
// fetched first through GOPROXY (`go mod download`), then the packages
// compiled and type-checked with GOPROXY=off.
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
