// Command suppressed is a gosec fixture with #nosec comments.
package main

import (
	"fmt"
	"math/rand"
	"os"
)

func main() {
	fmt.Println(rand.Intn(6)) // #nosec G404 -- dice for a board game, not for keys

	//#nosec
	fmt.Println(rand.Intn(10))

	fmt.Println(rand.Int()) // the one that is not suppressed

	os.Chmod("/tmp/x", 0o777) // #nosec G302 G104 -- fixture, never run
}
