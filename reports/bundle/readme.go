package bundle

import (
	"bytes"
	"strings"
	"text/template"
	"unicode"

	"github.com/vigil-sec/vigil/reports/attest"
)

// readmeData is what README.txt is written from.
type readmeData struct {
	Report    attest.AuditReport
	Files     []Entry // the files the caller gave, sorted
	KeyURL    string
	Predicate string
	Names     string // the subjects' names, for a shell loop
}

var readmeTemplate = template.Must(template.New("README.txt").Funcs(template.FuncMap{
	"pad": func(s string, n int) string { return s + strings.Repeat(" ", max(1, n-len(s))) },
	// line keeps a value on its line: names come from tenants and products.
	"line": func(s string) string {
		return strings.Map(func(r rune) rune {
			if unicode.IsControl(r) {
				return ' '
			}
			return r
		}, s)
	},
}).Parse(`Vigil audit report
==================

Product:    {{with .Report.Release.ProductName}}{{line .}} ({{end}}{{line .Report.Release.Product}}{{with .Report.Release.ProductName}}){{end}}
Version:    {{line .Report.Release.Version}}{{if not .Report.Release.ReleasedAt.IsZero}}, released {{.Report.Release.ReleasedAt.Format "2006-01-02"}}{{end}}
Recipient:  {{with .Report.Recipient.Name}}{{line .}} (tenant {{end}}{{line .Report.Recipient.Tenant}}{{with .Report.Recipient.Name}}){{end}}
{{- with .Report.Ticket}}
Ticket:     {{line .}}{{end}}
Signed by:  report-signing key {{.Report.SigningKeyID}} (ECDSA P-256)

Files
-----

  {{pad "README.txt" 30}}this file
  {{pad "attestation.intoto.jsonl" 30}}the signature
{{- range .Files}}
  {{pad .Name 30}}{{.Size}} bytes{{end}}

attestation.intoto.jsonl is a DSSE envelope signed with ECDSA P-256
(SHA-256). It holds an in-toto Statement v1 whose subjects are the name,
SHA-256 and size of every other file of this bundle, README.txt included,
and whose predicate, of type
{{.Predicate}},
names the release, the recipient, the ticket, every scan behind the report
(repository and commit or image digest, engines and their versions, times)
and the signing key's ID.

The bundle is genuine when the signature is good and the files are exactly
the subjects: none changed, none missing, none added.

The public key
--------------

{{if .KeyURL}}Download the report-signing public key, key ID
{{.Report.SigningKeyID}}, from

    {{.KeyURL}}

{{else}}Ask your vendor for its report-signing public key, key ID
{{.Report.SigningKeyID}}, as PEM. {{end -}}
Save it as report-key.pem in the folder that holds the ZIP. Get the key
from the vendor over a channel you trust (its HTTPS site), never from
whoever sent you the bundle.

Extract the ZIP into a new folder next to it and run the commands below in
that new folder.

1. With Vigil
-------------

    vigil verify --key ../report-key.pem .

or, in the folder that holds the ZIP:

    vigil verify --key report-key.pem BUNDLE.zip

It checks the signature, that the predicate names the key that signed,
every file's size and SHA-256, and that no file is missing or added, and
names the file or the check that failed. --key also reads the JWKS the
vendor publishes. It prints "verified" and exits 0, or exits 1.

2. With cosign v2
-----------------

    for f in {{.Names}}; do
      cosign verify-blob-attestation --key ../report-key.pem \
        --signature attestation.intoto.jsonl \
        --type {{.Predicate}} \
        --insecure-ignore-tlog "$f" || echo "NOT VERIFIED: $f"
    done

cosign prints "Verified OK" for every file. --insecure-ignore-tlog: the
signature is not in a public transparency log; the key you trust is what
vouches for it. cosign warns that it skips the log and, offline, that it
could not fetch Sigstore's trusted root: both are expected with a key. cosign checks one file at a time, so it does not notice a
file added to the folder: compare the folder with the list of files above.

3. With OpenSSL only
--------------------

Take the signed payload and the signature out of the envelope, rebuild the
bytes that were signed (DSSE's pre-authentication encoding:
"DSSEv1 <length of the type> <type> <length of the payload> <payload>"),
and check the signature:

    d=$(mktemp -d)
    sed -n 's/.*"payload":"\([^"]*\)".*/\1/p' attestation.intoto.jsonl | openssl base64 -d -A > "$d/payload.json"
    sed -n 's/.*"sig":"\([^"]*\)".*/\1/p' attestation.intoto.jsonl | openssl base64 -d -A > "$d/sig.der"
    printf 'DSSEv1 28 application/vnd.in-toto+json %s ' "$(wc -c < "$d/payload.json" | tr -d ' ')" > "$d/pae.bin"
    cat "$d/payload.json" >> "$d/pae.bin"
    openssl dgst -sha256 -verify ../report-key.pem -signature "$d/sig.der" "$d/pae.bin"

openssl prints "Verified OK". Then check every file against the signed
SHA-256 digests:

    grep -o '"name":"[^"]*","digest":{"sha256":"[0-9a-f]*"}' "$d/payload.json" | sed 's/"name":"\([^"]*\)","digest":{"sha256":"\([0-9a-f]*\)"}/\2  \1/' > "$d/SHA256SUMS"
    sha256sum -c "$d/SHA256SUMS"

Every file prints "OK" (on macOS: shasum -a 256 -c "$d/SHA256SUMS"). The
signed statement, with its predicate, is in "$d/payload.json". As with
cosign, compare the folder with the list of files above.
`))

// readme writes README.txt for the files (sorted), the report and the
// key's URL.
func readme(report attest.AuditReport, files []Entry, keyURL string) ([]byte, error) {
	names := []string{ReadmeName}
	for _, f := range files {
		names = append(names, f.Name)
	}
	var b bytes.Buffer
	err := readmeTemplate.Execute(&b, readmeData{
		Report: report, Files: files, KeyURL: keyURL,
		Predicate: attest.PredicateType, Names: strings.Join(names, " "),
	})
	return b.Bytes(), err
}
