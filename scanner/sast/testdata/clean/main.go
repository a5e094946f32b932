// Command clean is a gosec fixture with nothing to report.
package main

import (
	"crypto/sha256"
	"fmt"
	"os"
)

func main() {
	sum := sha256.Sum256([]byte("hello"))
	if _, err := fmt.Fprintf(os.Stdout, "%x\n", sum); err != nil {
		os.Exit(1)
	}
}
