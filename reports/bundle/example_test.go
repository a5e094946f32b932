package bundle_test

import (
	"bytes"
	"context"
	"fmt"

	"github.com/vigil-sec/vigil/reports/attest"
	"github.com/vigil-sec/vigil/reports/bundle"
)

// Build a bundle and verify it with the public key.
func Example() {
	ctx := context.Background()
	signer, _, err := attest.GenerateKey()
	if err != nil {
		panic(err)
	}
	report := &attest.AuditReport{
		Release:   attest.Release{Product: "widget", Version: "1.4.0"},
		Recipient: attest.Recipient{Tenant: "acme"},
	}
	files := []bundle.File{
		bundle.Bytes("sbom.cdx.json", []byte(`{"bomFormat":"CycloneDX"}`)),
		bundle.Bytes("sast.sarif", []byte(`{"version":"2.1.0"}`)),
	}
	var zip bytes.Buffer
	if _, err := bundle.Build(ctx, &zip, files, report, signer, nil); err != nil {
		panic(err)
	}

	res, err := bundle.VerifyZip(ctx, bytes.NewReader(zip.Bytes()), int64(zip.Len()), []attest.PublicKey{signer.PublicKey()})
	if err != nil {
		panic(err)
	}
	for _, f := range res.Files {
		fmt.Println(f.Name)
	}
	// Output:
	// README.txt
	// attestation.intoto.jsonl
	// sast.sarif
	// sbom.cdx.json
}
