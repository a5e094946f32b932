package render_test

import (
	"bytes"
	"log"

	"github.com/vigil-sec/vigil/reports"
	"github.com/vigil-sec/vigil/reports/render"
)

// Render a release's summary for the tenant whose ticket asked for it.
func Example() {
	var rel *reports.Release // filled by the pipeline from stored scans
	to := reports.Recipient{TenantID: "tnt_acme", TenantName: "Acme Corp", Ticket: "1042"}
	opts := &render.Options{KeyID: "the signing key's thumbprint", PredicateType: "the attestation's predicate type"}
	var pdf, page bytes.Buffer
	if err := render.PDF(&pdf, rel, to, opts); err != nil {
		log.Fatal(err)
	}
	if err := render.HTML(&page, rel, to, opts); err != nil {
		log.Fatal(err)
	}
}
