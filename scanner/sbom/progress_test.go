package sbom_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-sec/vigil/scanner"
	"github.com/vigil-sec/vigil/scanner/sbom"
)

// Not parallel: syft's event bus is process-wide.
func TestWatchProgressReportsCataloging(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/p\n\ngo 1.22\n\nrequire github.com/google/go-cmp v0.7.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var msgs []string
	stop := sbom.WatchProgress(func(m string) {
		mu.Lock()
		defer mu.Unlock()
		msgs = append(msgs, m)
	})
	_, err := sbom.Generate(context.Background(), &scanner.Target{Kind: scanner.KindDir, Ref: dir, Path: dir}, nil)
	// Let the watcher see the final counters before it stops.
	stop()
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(msgs) == 0 {
		t.Fatal("no progress was reported")
	}
	if last := msgs[len(msgs)-1]; !strings.Contains(last, "packages") {
		t.Errorf("last progress message %q does not count packages", last)
	}
	for _, m := range msgs {
		if !strings.HasPrefix(m, "cataloging: ") || !strings.Contains(m, "tasks") {
			t.Errorf("progress message %q", m)
		}
	}
}
