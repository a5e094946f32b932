// Command vigil scans source trees, commits and container images, writes
// the standard reports and gates deploys on the result.
//
// Usage:
//
//	vigil scan [flags] [TARGET]
//	vigil version
//
// Exit codes: 0 pass, 1 the gate failed, 2 bad usage or bad input, 3 the
// scan itself failed.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/vigil-sec/vigil/internal/cli"
)

// gcPercent is Vigil's default GOGC. Scans hold a whole source tree's
// syntax and types, or a whole image's package catalog, at once: collecting
// at 50% growth instead of Go's 100% keeps peak memory at or below what the
// gosec and syft CLIs use, for a few percent more CPU (see README,
// Performance). Setting GOGC in the environment overrides it.
const gcPercent = 50

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], cli.Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stop()
	os.Exit(code)
}
