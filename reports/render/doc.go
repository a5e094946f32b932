// Package render writes a release's summary, the part of a report bundle
// a reviewer reads, as one self-contained HTML file (HTML) and as a PDF
// (PDF). Both say the same things in the same order:
//
//   - cover: product, version, release date, and who the report was
//     prepared for (tenant and support ticket);
//   - scope: the repositories with their commits and scan times, the
//     images with their digests, engine versions and policy versions;
//   - results: findings by severity and state (open, waived, suppressed
//     in source), charts by severity, by rule, and of the gate decisions
//     of the last 90 days, and the open findings themselves;
//   - waivers: owner, reason, expiry and what each covers;
//   - components and licenses: counts, licenses in use, components under
//     licenses the policy denies;
//   - how to verify the bundle.
//
// Every page carries the recipient's name and the ticket number as a
// watermark and in its header and footer. Charts are drawn (inline SVG in
// the HTML, vector paths in the PDF) from one geometry, so both show the
// same picture. The HTML uses html/template, so every name and message
// from a scan or a tenant is escaped; it has no JavaScript and loads
// nothing (a Content-Security-Policy says so to the browser). The PDF is
// written with go-pdf/fpdf and the Go fonts; its dates come from the
// release, so the same release and recipient always give the same bytes.
package render
