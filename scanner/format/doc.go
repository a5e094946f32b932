// Package format writes a scan Result, with its gate decision, in the
// formats `vigil scan -o` offers: a human-readable table, Vigil's own JSON,
// SARIF 2.1.0 for code-scanning tools, and the SBOM standards CycloneDX 1.6
// (JSON and XML) and SPDX 2.3 (JSON), which scanner/sbom encodes.
//
// Vigil's JSON is the Result object with a "gate" member holding the
// decision; it is the same JSON the server's API returns for a scan.
package format
