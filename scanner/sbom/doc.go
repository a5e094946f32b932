// Package sbom is the "sbom" scan engine: it runs syft as a library and
// writes the result in the standard formats.
//
// Generate (and Engine, which wraps it for scanner.Scan) catalogs a
// directory, a git checkout or a resolved container image with syft's
// default catalogers for that kind of source, the same ones the syft CLI
// picks. An image is read from the v1.Image that scanner/image resolved,
// so go-containerregistry does the pulling and the credentials, platform
// and reference handling stay in one place; stereoscope unpacks its layers
// into a temporary directory that is removed when cataloging ends.
//
// Each package becomes a scanner.Component: name, version, syft's package
// type, purl, SPDX licenses, the paths it was found at, and for images the
// diff ID of the layer that brought it. The syft document itself is kept in
// SBOM.Document, so that EncodeCycloneDX (CycloneDX 1.6, JSON or XML) and
// EncodeSPDX (SPDX 2.3 JSON) lose nothing.
package sbom
