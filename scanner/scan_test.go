package scanner_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-sec/vigil/scanner"
)

// engine is a test engine that returns fixed findings after an optional
// delay and records how many engines ran at once.
func engine(id string, applies scanner.Kind, out *scanner.Output, err error, running, peak *atomic.Int32) scanner.Engine {
	return scanner.Engine{
		ID:      id,
		Version: "v1",
		Applies: func(t *scanner.Target) bool { return applies == "" || t.Kind == applies },
		Run: func(ctx context.Context, _ *scanner.Target) (*scanner.Output, error) {
			if running != nil {
				n := running.Add(1)
				defer running.Add(-1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				select {
				case <-time.After(50 * time.Millisecond):
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			return out, err
		},
	}
}

func finding(rule, file string, line int) scanner.Finding {
	return scanner.Finding{RuleID: rule, File: file, Line: line}
}

func TestSelect(t *testing.T) {
	t.Parallel()
	reg := []scanner.Engine{
		engine("sast", scanner.KindDir, nil, nil, nil, nil),
		engine("sbom", "", nil, nil, nil, nil),
	}
	dir := &scanner.Target{Kind: scanner.KindDir, Ref: "."}
	img := &scanner.Target{Kind: scanner.KindImage, Ref: "r/x:1"}
	ids := func(es []scanner.Engine) []string {
		var s []string
		for _, e := range es {
			s = append(s, e.ID)
		}
		return s
	}
	tests := []struct {
		name    string
		ids     []string
		target  *scanner.Target
		want    []string
		wantErr string
	}{
		{"every engine that applies to a dir", nil, dir, []string{"sast", "sbom"}, ""},
		{"every engine that applies to an image", nil, img, []string{"sbom"}, ""},
		{"named, in the order given, once", []string{"sbom", " sast", "sbom"}, dir, []string{"sbom", "sast"}, ""},
		{"unknown", []string{"dast"}, dir, nil, `unknown engine "dast": want one of sast, sbom`},
		{"not applicable", []string{"sast"}, img, nil, `engine "sast" does not apply to image target "r/x:1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := scanner.Select(reg, tt.ids, tt.target)
			if tt.wantErr != "" {
				if !errors.Is(err, scanner.ErrUsage) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want a usage error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(ids(got), tt.want); diff != "" {
				t.Errorf("engines (-got +want):\n%s", diff)
			}
		})
	}
}

func TestScanMergesSortsAndRunsOneAtATimeByDefault(t *testing.T) {
	t.Parallel()
	for _, parallel := range []bool{false, true} {
		var running, peak atomic.Int32
		sbom := &scanner.SBOM{Components: []scanner.Component{{Name: "x"}}}
		engines := []scanner.Engine{
			engine("a", "", &scanner.Output{Findings: []scanner.Finding{finding("G2", "b.go", 1), finding("G1", "a.go", 9)}, Warnings: []string{"w"}}, nil, &running, &peak),
			engine("b", "", &scanner.Output{Findings: []scanner.Finding{finding("G1", "a.go", 3)}, SBOM: sbom}, nil, &running, &peak),
		}
		res, err := scanner.Scan(context.Background(), &scanner.Target{Kind: scanner.KindDir, Ref: "."}, engines, scanner.Options{Parallel: parallel})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range res.Findings {
			got = append(got, f.File+":"+f.RuleID)
		}
		if diff := cmp.Diff(got, []string{"a.go:G1", "a.go:G1", "b.go:G2"}); diff != "" {
			t.Errorf("parallel=%v findings (-got +want):\n%s", parallel, diff)
		}
		if res.Findings[0].Line != 3 || res.SBOM != sbom || len(res.Engines) != 2 || res.Engines[0].Warnings[0] != "w" {
			t.Errorf("parallel=%v result = %+v", parallel, res)
		}
		if want := map[bool]int32{false: 1, true: 2}[parallel]; peak.Load() != want {
			t.Errorf("parallel=%v: %d engines ran at once, want %d", parallel, peak.Load(), want)
		}
	}
}

func TestScanReportsTheEngineThatFailed(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	for _, parallel := range []bool{false, true} {
		var running, peak atomic.Int32
		engines := []scanner.Engine{
			engine("slow", "", &scanner.Output{}, nil, &running, &peak),
			engine("bad", "", nil, boom, nil, nil),
		}
		_, err := scanner.Scan(context.Background(), &scanner.Target{Kind: scanner.KindDir}, engines, scanner.Options{Parallel: parallel})
		var ee *scanner.EngineError
		if !errors.As(err, &ee) || ee.Engine != "bad" || !errors.Is(err, boom) {
			t.Errorf("parallel=%v: err = %v, want the bad engine's error", parallel, err)
		}
	}
}

func TestScanCancelledReturnsNoPartialResult(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	engines := []scanner.Engine{
		{ID: "first", Run: func(context.Context, *scanner.Target) (*scanner.Output, error) {
			cancel() // the user presses ^C while the first engine finishes
			return &scanner.Output{}, nil
		}},
		{ID: "second", Run: func(context.Context, *scanner.Target) (*scanner.Output, error) {
			t.Error("the second engine ran after cancellation")
			return &scanner.Output{}, nil
		}},
	}
	res, err := scanner.Scan(ctx, &scanner.Target{Kind: scanner.KindDir}, engines, scanner.Options{})
	if !errors.Is(err, context.Canceled) || res != nil {
		t.Errorf("Scan = %v, %v; want no result and context.Canceled", res, err)
	}
}

func TestLevels(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"low", "MEDIUM", " High "} {
		l, err := scanner.ParseLevel(s)
		if err != nil || !strings.EqualFold(l.String(), strings.TrimSpace(s)) {
			t.Errorf("ParseLevel(%q) = %v, %v", s, l, err)
		}
	}
	if _, err := scanner.ParseLevel("critical"); err == nil || !strings.Contains(err.Error(), `"critical"`) {
		t.Errorf("ParseLevel(critical) err = %v", err)
	}
	if !(scanner.LevelLow < scanner.LevelMedium && scanner.LevelMedium < scanner.LevelHigh) {
		t.Error("levels are not ordered")
	}
}

// mapCache is an in-memory Cache.
type mapCache struct {
	mu   sync.Mutex
	data map[string][]byte
}

func (c *mapCache) Get(_ context.Context, key string) ([]byte, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.data[key]
	return b, ok, nil
}

func (c *mapCache) Put(_ context.Context, key string, data []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.data == nil {
		c.data = map[string][]byte{}
	}
	c.data[key] = data
	return nil
}

// TestScanUnanalysed checks that the parts engines could not analyse reach
// the Result, named by engine and sorted, and that an output with such
// parts is not served from the scan cache next time (the part may load
// then).
func TestScanUnanalysed(t *testing.T) {
	t.Parallel()
	var runs atomic.Int32
	out := &scanner.Output{Unanalysed: []scanner.Unanalysed{{Path: "svc", Reason: "go.mod does not parse"}, {Engine: "x", Path: "api", Reason: "r"}}}
	e := engine("sast", "", out, nil, nil, nil)
	e.Codec = scanner.JSONCodec
	run := e.Run
	e.Run = func(ctx context.Context, t *scanner.Target) (*scanner.Output, error) {
		runs.Add(1)
		return run(ctx, t)
	}
	// A Git target in a repository has a content key, so whole outputs
	// are cached.
	target := &scanner.Target{Kind: scanner.KindGit, Ref: "..", Path: "..", Commit: "HEAD"}
	cache := &mapCache{}
	for range 2 {
		res, err := scanner.Scan(t.Context(), target, []scanner.Engine{e}, scanner.Options{Cache: cache})
		if err != nil {
			t.Fatal(err)
		}
		want := []scanner.Unanalysed{{Engine: "x", Path: "api", Reason: "r"}, {Engine: "sast", Path: "svc", Reason: "go.mod does not parse"}}
		if diff := cmp.Diff(res.Unanalysed, want); diff != "" {
			t.Errorf("Unanalysed (-got +want):\n%s", diff)
		}
	}
	if n := runs.Load(); n != 2 {
		t.Errorf("the engine ran %d times; want 2 (an incomplete output is not cached)", n)
	}
	if key, err := scanner.ContentKey(t.Context(), target); err != nil || key == "" {
		t.Fatalf("ContentKey = %q, %v: the test needs a content key to test the cache", key, err)
	}
}
