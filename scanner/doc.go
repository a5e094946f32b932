// Package scanner holds Vigil's scan domain: what is scanned (Target), what
// the engines found (Finding, SBOM, Component) and the whole outcome of one
// scan (Result).
//
// Engines live in subpackages named for their role: scanner/sast runs gosec
// as a library, scanner/sbom runs syft as a library. scanner/source checks a
// git commit out into a workspace and scanner/image resolves container
// images with go-containerregistry. scanner/format writes a Result in the
// standard formats (SARIF, CycloneDX, SPDX) and in Vigil's own JSON.
//
// The pieces meet in Scan, which runs every selected engine on one target
// concurrently and merges their outputs into a Result.
package scanner
