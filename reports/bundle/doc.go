// Package bundle builds and verifies audit report bundles: a ZIP of
// report files, a README.txt saying how to verify them, and
// attestation.intoto.jsonl, one DSSE envelope (package reports/attest)
// whose in-toto statement names the SHA-256 and size of every other file.
//
// Build writes the ZIP deterministically: entries sorted by name, one
// fixed modification time, mode 0644, Deflate, no extra fields and no
// comment, and signatures are deterministic too, so the same files,
// predicate and key give the same bytes (with the same Vigil build: the
// compressor's output is Go's). Files are streamed, read twice (to hash,
// then to write), so memory stays flat in their size.
//
// Verify takes a ZIP or a directory where one was extracted and checks,
// in order: the shape of the entries (names, types, duplicates, and for a
// ZIP that its bytes hold nothing but its entries), the signature against
// the given public keys, that the predicate names the signing key, that
// the files are exactly the statement's subjects with their sizes, and
// every file's SHA-256. Its errors are *Error values naming the file and
// the check, all matching ErrNotVerified.
package bundle
