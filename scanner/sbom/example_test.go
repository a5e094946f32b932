package sbom_test

import (
	"context"
	"log"
	"os"

	"github.com/vigil-sec/vigil/scanner"
	"github.com/vigil-sec/vigil/scanner/image"
	"github.com/vigil-sec/vigil/scanner/sbom"
)

// Scan an image with the sbom engine and write CycloneDX 1.6 JSON.
func ExampleEngine() {
	ctx := context.Background()
	target, err := image.Resolve(ctx, "oci:./layout", image.Options{})
	if err != nil {
		log.Fatal(err)
	}
	engines, err := scanner.Select([]scanner.Engine{sbom.Engine(nil)}, []string{"sbom"}, target)
	if err != nil {
		log.Fatal(err)
	}
	res, err := scanner.Scan(ctx, target, engines, scanner.Options{})
	if err != nil {
		log.Fatal(err)
	}
	if err := sbom.EncodeCycloneDX(os.Stdout, res.SBOM, false); err != nil {
		log.Fatal(err)
	}
}
