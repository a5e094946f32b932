package sast

import (
	"path/filepath"
	"testing"

	"github.com/vigil-sec/vigil/scanner"
)

func BenchmarkScan(b *testing.B) {
	dir := filepath.Join("testdata", "vuln")
	engine := Engine(nil)
	target := &scanner.Target{Kind: scanner.KindDir, Ref: dir, Path: dir}
	for b.Loop() {
		if _, err := engine.Run(b.Context(), target); err != nil {
			b.Fatal(err)
		}
	}
}
