package attest_test

import (
	"context"
	"fmt"

	"github.com/vigil-sec/vigil/reports/attest"
)

// Sign a statement about one file and verify it with the published keys.
func Example() {
	ctx := context.Background()
	signer, _, err := attest.GenerateKey() // store the PEM sealed; attest.ParseSigner reads it back
	if err != nil {
		panic(err)
	}
	report := &attest.AuditReport{
		Release:      attest.Release{Product: "widget", Version: "1.4.0"},
		Recipient:    attest.Recipient{Tenant: "acme"},
		SigningKeyID: signer.KeyID(),
	}
	st, err := attest.NewStatement([]attest.Subject{{
		Name:   "sbom.cdx.json",
		Digest: map[string]string{"sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	}}, attest.PredicateType, report)
	if err != nil {
		panic(err)
	}
	env, err := signer.Sign(ctx, st)
	if err != nil {
		panic(err)
	}

	// A verifier has the public keys as PEM or JWKS.
	jwks, _ := attest.MarshalJWKS(signer.PublicKey())
	keys, err := attest.ParsePublicKeys(jwks)
	if err != nil {
		panic(err)
	}
	v, err := attest.Verify(ctx, env, keys)
	if err != nil {
		panic(err)
	}
	got, _ := v.Statement.AuditReport()
	fmt.Println(v.Statement.Subject[0].Name, got.Release.Version, v.KeyID == signer.KeyID())
	// Output: sbom.cdx.json 1.4.0 true
}
