// Package engines is the one table of the scan engines Vigil runs: the
// CLI's `vigil scan` takes its engines from Registry and the server's scan
// workers from Worker, so a new engine is added in one place.
package engines

import (
	"strconv"

	"github.com/vigil-sec/vigil/scanner"
	"github.com/vigil-sec/vigil/scanner/sast"
	"github.com/vigil-sec/vigil/scanner/sbom"
)

// Progress receives an engine's progress messages; nil discards them.
type Progress func(engine, msg string)

// Registry returns the engines of `vigil scan`, selected by ID with
// scanner.Select: they analyse the user's own tree with the user's go
// environment, and reuse the build cache the user's own builds left.
func Registry(progress Progress) []scanner.Engine {
	return table(progress, sast.Config{})
}

// Worker returns the engines of the server's scan workers, which analyse
// code nobody on the server chose: the sast engine runs the go command
// with sast.Config.Untrusted (GOTOOLCHAIN=local, CGO_ENABLED=0, no VCS,
// no network while compiling) and with -trimpath, so that compiles of
// one package from different checkouts share their build cache entries.
func Worker(progress Progress) []scanner.Engine {
	return table(progress, sast.Config{Untrusted: true, TrimPath: true})
}

func table(progress Progress, sc sast.Config) []scanner.Engine {
	if progress == nil {
		progress = func(string, string) {}
	}
	sc.Progress = func(done, total int) {
		progress("sast", "analysed "+strconv.Itoa(done)+"/"+strconv.Itoa(total)+" packages")
	}
	return []scanner.Engine{
		sast.Engine(&sc),
		sbom.Engine(&sbom.Config{
			Progress: func(msg string) { progress("sbom", msg) },
		}),
	}
}
