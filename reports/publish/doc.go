// Package publish builds the signed audit report bundles of releases and
// keeps them: what a support ticket's approval answers a customer with,
// and what its secure link serves.
//
// A Publisher assembles a stored release (reports.StoredRelease) into the
// content of its report (reports.Release: each scan's stored result, its
// gate decision, policy version and waivers as they stood when the
// release was cut, and its gate history of the last 90 days), writes the
// documents (reports/format's SBOMs and SARIF, reports/render's summary),
// signs them with the installation's current report-signing key
// (reports.KeyRing, reports/attest) and zips them (reports/bundle), then
// stores the ZIP in the blob store, content-addressed, with a record in
// the database (Store).
//
//	pub, err := publish.New(publish.Config{Store: db, Blobs: blobs, Releases: rel, Pipeline: pipe, Licensing: lic, Keys: ring})
//	b, err := pub.Build(ctx, releaseID, publish.Recipient{TenantID: tenant, Ticket: "1042"})
//	content, err := pub.OpenBundle(ctx, b.ID) // seekable, for ranged downloads
//
// A bundle is built once per (release, tenant, ticket): Build returns the
// stored one after that, and a download reads the stored bytes. Two builds
// of the same release for the same recipient with the same key give the
// same bytes, since every document takes its dates from the release.
package publish
