package format

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/vigil-sec/vigil/scanner"
	"github.com/vigil-sec/vigil/scanner/sbom"
)

// Format names an output format.
type Format string

// The formats, as -o names them.
const (
	Table         Format = "table"
	JSON          Format = "json"
	SARIF         Format = "sarif"
	CycloneDXJSON Format = "cyclonedx-json"
	CycloneDXXML  Format = "cyclonedx-xml"
	SPDXJSON      Format = "spdx-json"
)

// All lists every format, in the order help texts show them.
var All = []Format{Table, JSON, SARIF, CycloneDXJSON, CycloneDXXML, SPDXJSON}

// Parse checks a format name.
func Parse(s string) (Format, error) {
	for _, f := range All {
		if string(f) == s {
			return f, nil
		}
	}
	names := make([]string, len(All))
	for i, f := range All {
		names[i] = string(f)
	}
	return "", fmt.Errorf("%w: unknown output format %q: want one of %s", scanner.ErrUsage, s, strings.Join(names, ", "))
}

// NeedsSBOM reports whether the format is an SBOM document, which only a
// scan that ran the sbom engine can produce.
func (f Format) NeedsSBOM() bool {
	return f == CycloneDXJSON || f == CycloneDXXML || f == SPDXJSON
}

// Report is what Vigil's JSON format holds: the scan result and its gate
// decision.
type Report struct {
	*scanner.Result
	Gate *Gate `json:"gate,omitempty"`
}

// Write writes the result and its gate decision (which may be nil) in
// format f.
func Write(w io.Writer, f Format, res *scanner.Result, gate *Gate) error {
	switch f {
	case Table:
		return WriteTable(w, res, gate)
	case JSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(Report{Result: res, Gate: gate})
	case SARIF:
		return WriteSARIF(w, res)
	case CycloneDXJSON, CycloneDXXML, SPDXJSON:
		if res.SBOM == nil {
			return fmt.Errorf("%w: format %s needs the sbom engine, which did not run", scanner.ErrUsage, f)
		}
		if f == SPDXJSON {
			return sbom.EncodeSPDX(w, res.SBOM)
		}
		return sbom.EncodeCycloneDX(w, res.SBOM, f == CycloneDXXML)
	}
	return fmt.Errorf("%w: unknown output format %q", scanner.ErrUsage, f)
}
