// Package format writes a reports.Release as the standard documents a
// report bundle carries:
//
//   - WriteCycloneDX: one CycloneDX 1.6 JSON SBOM for the whole release.
//     The product is metadata.component; each repository (at its commit)
//     and each image (at its digest) is a component with the packages
//     found in it nested as its components; dependencies link the
//     product to its repositories and images and each of them to its
//     packages.
//   - WriteSPDX: the same as one SPDX 2.3 JSON document: a package for
//     the product, one for each repository and image, one for each of
//     their packages, and DESCRIBES / CONTAINS relationships.
//   - WriteSARIF: a SARIF 2.1.0 log with one run per scan that can have
//     findings (every repository commit, and any image with findings),
//     each written by scanner/format's SARIFRun with its own
//     automationDetails.id, the findings' suppressions (in source and
//     waivers) as they stood, and the project's waiver register in the
//     run's properties.
//
// The documents are built from the scans' results as the pipeline stores
// them (scanner.Component, not the engines' own documents), so a release
// built from a fresh scan and from its stored copy gives the same bytes.
// Output is deterministic: scans in reports.Release.SortedScans order,
// components in the order the result lists them (sorted by the engine),
// timestamps, serial numbers and namespaces derived from the release,
// never from the clock or a random source.
package format
