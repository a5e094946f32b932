package format_test

import (
	"io"
	"log"
	"os"

	"github.com/vigil-sec/vigil/reports"
	"github.com/vigil-sec/vigil/reports/format"
)

// Write a release's three documents, as a report bundle holds them.
func Example() {
	var rel *reports.Release // filled by the pipeline from stored scans
	for _, doc := range []struct {
		name  string
		write func(io.Writer, *reports.Release) error
	}{
		{"sbom.cdx.json", format.WriteCycloneDX},
		{"sbom.spdx.json", format.WriteSPDX},
		{"sast.sarif", format.WriteSARIF},
	} {
		f, err := os.Create(doc.name)
		if err != nil {
			log.Fatal(err)
		}
		if err := doc.write(f, rel); err != nil {
			log.Fatal(err)
		}
		if err := f.Close(); err != nil {
			log.Fatal(err)
		}
	}
}
