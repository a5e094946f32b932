package image_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/vigil-sec/vigil/scanner"
	"github.com/vigil-sec/vigil/scanner/image"
)

func ExampleResolve() {
	ctx := context.Background()
	t, err := image.Resolve(ctx, "ghcr.io/example/app:1.2", image.Options{
		Platform: "linux/arm64",
		Progress: func(msg string) { log.Print(msg) },
	})
	switch {
	case errors.Is(err, scanner.ErrUsage):
		log.Fatalf("bad image reference: %v", err) // exit code 2
	case err != nil:
		log.Fatalf("pulling: %v", err) // exit code 3
	}
	fmt.Println(t.Digest, t.Platform)
}

func ExampleIsImageRef() {
	for _, s := range []string{"ghcr.io/example/app:1.2", "localhost:5000/app", "oci:./layout", "archive:app.tar", "./src", "alpine:3"} {
		fmt.Println(s, image.IsImageRef(s))
	}
	// Output:
	// ghcr.io/example/app:1.2 true
	// localhost:5000/app true
	// oci:./layout true
	// archive:app.tar true
	// ./src false
	// alpine:3 false
}
