// Package engines is the one table of the scan engines Vigil runs: the
// CLI's `vigil scan` and the server's scan worker both take their engines
// from Registry, so a new engine is added in one place.
package engines

import (
	"strconv"

	"github.com/vigil-sec/vigil/scanner"
	"github.com/vigil-sec/vigil/scanner/sast"
	"github.com/vigil-sec/vigil/scanner/sbom"
)

// Progress receives an engine's progress messages; nil discards them.
type Progress func(engine, msg string)

// Registry returns the engines, selected by ID with scanner.Select.
func Registry(progress Progress) []scanner.Engine {
	if progress == nil {
		progress = func(string, string) {}
	}
	return []scanner.Engine{
		sast.Engine(&sast.Config{
			Progress: func(done, total int) {
				progress("sast", "analysed "+strconv.Itoa(done)+"/"+strconv.Itoa(total)+" packages")
			},
		}),
		sbom.Engine(&sbom.Config{
			Progress: func(msg string) { progress("sbom", msg) },
		}),
	}
}
