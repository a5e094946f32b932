package sast_test

import (
	"context"
	"fmt"
	"log"

	"github.com/vigil-sec/vigil/scanner"
	"github.com/vigil-sec/vigil/scanner/sast"
)

func ExampleEngine() {
	engine := sast.Engine(nil) // the gosec CLI's defaults
	target := &scanner.Target{Kind: scanner.KindDir, Ref: "testdata/suppressed", Path: "testdata/suppressed"}
	if !engine.Applies(target) {
		log.Fatal("not a Go module")
	}
	out, err := engine.Run(context.Background(), target)
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range out.Findings {
		fmt.Printf("%s:%d %s %s %s suppressed=%v\n", f.File, f.Line, f.RuleID, f.CWE, f.Severity, f.Suppressed)
	}
	// Output:
	// main.go:11 G404 CWE-338 high suppressed=true
	// main.go:14 G404 CWE-338 high suppressed=true
	// main.go:16 G404 CWE-338 high suppressed=false
	// main.go:18 G104 CWE-703 low suppressed=true
	// main.go:18 G302 CWE-276 medium suppressed=true
}
