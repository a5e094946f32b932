// Package reports is what leaves the building: the audit reports a vendor
// hands its customers. Its root holds the domain types a report is made
// of, free of storage:
//
//   - Release: a named, immutable set of scans of one product (the
//     repositories at given commits and the images at given digests),
//     with each scan's result, policy version, waivers and gate history
//     as they stood when the release was cut;
//   - Recipient: who a report is prepared for (a licensing tenant) and
//     the support ticket it answers, which every rendered page carries.
//
// The pipeline fills a Release from what it stored; the subpackages turn
// it into documents: reports/format writes the release's CycloneDX 1.6 and
// SPDX 2.3 SBOMs and its SARIF 2.1.0 log, reports/render its summary as
// HTML and PDF. Every document is deterministic: the same Release (and
// Recipient) gives the same bytes, with every date taken from the Release,
// so that a signed bundle built again is the same bundle.
package reports
