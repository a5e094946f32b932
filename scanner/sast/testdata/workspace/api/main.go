// Command api uses the worker module through the workspace.
package main

import (
	"crypto/sha1"
	"fmt"
	"os"

	"example.com/worker/jobs"
)

func main() {
	fmt.Printf("%x\n", sha1.Sum([]byte(os.Args[1])))
	jobs.Run(os.Args[1])
}
