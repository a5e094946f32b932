// Command fixture-project is test data for the sbom engine: a module that
// requires two others.
package main

import (
	"fmt"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
)

func main() {
	fmt.Println(uuid.NewString(), cmp.Diff(1, 2))
}
