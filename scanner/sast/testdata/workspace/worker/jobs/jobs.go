// Package jobs runs what it is told.
package jobs

import (
	"math/rand"
	"os/exec"
)

// Run runs cmd after a random pause.
func Run(cmd string) {
	_ = rand.Intn(10)
	exec.Command("sh", "-c", cmd).Run()
}
