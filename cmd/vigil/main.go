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
	"syscall"

	"github.com/vigil-sec/vigil/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], cli.Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stop()
	os.Exit(code)
}
