package cli

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// progress shows what a long scan is doing on one status line of a
// terminal. When disabled (not a terminal, or --quiet) it prints nothing.
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	enabled bool
	status  map[string]string // the latest message of each stage
	order   []string
	last    time.Time
}

func newProgress(w io.Writer, enabled bool) *progress {
	return &progress{w: w, enabled: enabled, status: map[string]string{}}
}

// set records the latest message of a stage ("sast", "sbom", "image") and
// redraws the line, at most ten times a second.
func (p *progress) set(stage, format string, args ...any) {
	if p == nil || !p.enabled {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.status[stage]; !ok {
		p.order = append(p.order, stage)
	}
	p.status[stage] = fmt.Sprintf(format, args...)
	if time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	line := ""
	for _, s := range p.order {
		if line != "" {
			line += " · "
		}
		line += s + ": " + p.status[s]
	}
	fmt.Fprintf(p.w, "\r\033[K%s", line)
}

// done clears the status line.
func (p *progress) done() {
	if p == nil || !p.enabled {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.order) > 0 {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
