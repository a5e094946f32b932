// Package image resolves a container image reference into a scanner.Target
// with go-containerregistry.
//
// Resolve accepts three forms of reference:
//
//   - a registry reference, "host/repo:tag" or "host/repo@sha256:…", pulled
//     with ggcr's remote package;
//   - "oci:DIR", an OCI image layout on disk;
//   - "archive:FILE", a `docker save` tarball or a tarball of an OCI image
//     layout, read in place without extracting it.
//
// When a reference names an index (a multi-arch image), Resolve picks one
// image by platform: Options.Platform, or DefaultPlatform (linux/amd64,
// whatever machine Vigil runs on, so that a scan means the same thing on
// every CI runner). Nested indexes are searched too.
//
// Resolve reads manifests and configs only. Layers are streamed later, by
// whoever reads Target.Image (the SBOM engine), and for a registry image the
// pulls use the context given to Resolve, so keep it alive until the scan
// ends.
//
// Errors in what the user asked for (a malformed reference, a missing
// directory or file, a platform the index does not hold, an image the
// registry does not have) wrap scanner.ErrUsage; an unreachable registry or
// a failed pull is a plain error naming the reference.
package image
