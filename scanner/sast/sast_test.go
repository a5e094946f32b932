package sast

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-sec/vigil/scanner"
)

// setup returns a Config that logs to the test and the fixture's target.
func setup(t *testing.T, dir string) (*Config, *scanner.Target) {
	t.Helper()
	cfg := &Config{Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}
	return cfg, &scanner.Target{Kind: scanner.KindDir, Ref: dir, Path: dir}
}

// scan runs the engine on dir and fails the test on an error.
func scan(t *testing.T, cfg *Config, target *scanner.Target) *scanner.Output {
	t.Helper()
	out, err := Engine(cfg).Run(t.Context(), target)
	if err != nil {
		t.Fatalf("Run(%s): %v", target.Path, err)
	}
	return out
}

// copyFixture copies testdata/<name> into a temporary directory.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", name))); err != nil {
		t.Fatal(err)
	}
	return dir
}

// ruleIDs returns the sorted rule IDs of the findings that are (or are
// not) suppressed.
func ruleIDs(fs []scanner.Finding, suppressed bool) []string {
	var ids []string
	for _, f := range fs {
		if f.Suppressed == suppressed {
			ids = append(ids, f.RuleID)
		}
	}
	slices.Sort(ids)
	return ids
}

func TestRun(t *testing.T) {
	t.Parallel()
	vuln := []string{
		"G101", "G104", "G104", "G204", "G304", "G401", "G404", "G501",
		"G701", "G702", "G703", "G703", "G703", "G705",
	}
	tests := []struct {
		name           string
		fixture        string
		tests          bool
		concurrency    int
		wantRuleIDs    []string
		wantSuppressed []string
	}{
		{name: "vuln", fixture: "vuln", wantRuleIDs: vuln},
		{name: "vuln one worker", fixture: "vuln", concurrency: 1, wantRuleIDs: vuln},
		{name: "vuln more workers than packages", fixture: "vuln", concurrency: 8, wantRuleIDs: vuln},
		{
			name: "vuln with tests", fixture: "vuln", tests: true,
			// store_test.go adds a G404, and store.go is reported once.
			wantRuleIDs: slices.Sorted(slices.Values(append(slices.Clone(vuln), "G404"))),
		},
		{
			name: "suppressed", fixture: "suppressed",
			wantRuleIDs:    []string{"G404"},
			wantSuppressed: []string{"G104", "G302", "G404", "G404"},
		},
		{name: "clean", fixture: "clean"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, target := setup(t, filepath.Join("testdata", tt.fixture))
			cfg.Tests = tt.tests
			cfg.Concurrency = tt.concurrency
			out := scan(t, cfg, target)
			if diff := cmp.Diff(ruleIDs(out.Findings, false), tt.wantRuleIDs); diff != "" {
				t.Errorf("unsuppressed rule IDs (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(ruleIDs(out.Findings, true), tt.wantSuppressed); diff != "" {
				t.Errorf("suppressed rule IDs (-got +want):\n%s", diff)
			}
			if len(out.Warnings) > 0 {
				t.Errorf("warnings: %q", out.Warnings)
			}
			sorted := slices.Clone(out.Findings)
			scanner.SortFindings(sorted)
			if diff := cmp.Diff(out.Findings, sorted); diff != "" {
				t.Errorf("findings are not sorted (-got +sorted):\n%s", diff)
			}
			for _, f := range out.Findings {
				if len(f.Fingerprint) != 32 {
					t.Errorf("%s %s:%d: fingerprint %q, want 32 hex digits", f.RuleID, f.File, f.Line, f.Fingerprint)
				}
			}
		})
	}
}

func TestRunFindingFields(t *testing.T) {
	t.Parallel()
	cfg, target := setup(t, filepath.Join("testdata", "vuln"))
	out := scan(t, cfg, target)

	var got []scanner.Finding
	for _, f := range out.Findings {
		if f.File == "main.go" && (f.RuleID == "G404" || f.RuleID == "G101") {
			if len(f.Fingerprint) != 32 {
				t.Errorf("%s fingerprint %q: want 32 hex digits", f.RuleID, f.Fingerprint)
			}
			f.Fingerprint = ""
			got = append(got, f)
		}
	}
	want := []scanner.Finding{
		{
			Engine:     "sast",
			RuleID:     "G101",
			Message:    "Potential hardcoded credentials",
			CWE:        "CWE-798",
			Severity:   scanner.LevelHigh,
			Confidence: scanner.LevelLow,
			File:       "main.go",
			Line:       12,
			Column:     7,
			Snippet:    "11: \n12: const dbPassword = \"f62e5bcda4fae4f82370da0c6f20697b8f8447ef\"\n13: \n",
		},
		{
			Engine:     "sast",
			RuleID:     "G404",
			Message:    "Use of weak random number generator (math/rand or math/rand/v2 instead of crypto/rand)",
			CWE:        "CWE-338",
			Severity:   scanner.LevelHigh,
			Confidence: scanner.LevelMedium,
			File:       "main.go",
			Line:       24,
			Column:     14,
			Snippet:    "23: \tfmt.Printf(\"%x\\n\", md5.Sum(data))\n24: \tfmt.Println(rand.Intn(100), len(dbPassword))\n25: \tos.Remove(name + \".bak\")\n",
		},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("findings (-got +want):\n%s", diff)
	}
	for _, f := range out.Findings {
		if strings.Contains(f.File, "\\") || filepath.IsAbs(f.File) {
			t.Errorf("file %q: want a slash-separated path relative to the root", f.File)
		}
	}
}

func TestRunSuppressed(t *testing.T) {
	t.Parallel()
	cfg, target := setup(t, filepath.Join("testdata", "suppressed"))
	out := scan(t, cfg, target)

	type suppression struct {
		RuleID       string
		Line         int
		Suppressed   bool
		Suppressions []scanner.Suppression
	}
	var got []suppression
	for _, f := range out.Findings {
		got = append(got, suppression{f.RuleID, f.Line, f.Suppressed, f.Suppressions})
	}
	inSource := func(why string) []scanner.Suppression {
		return []scanner.Suppression{{Kind: scanner.SuppressionInSource, Justification: why}}
	}
	want := []suppression{
		{"G404", 11, true, inSource("dice for a board game, not for keys")},
		{"G404", 14, true, inSource("")},
		{"G404", 16, false, nil},
		{"G104", 18, true, inSource("fixture, never run")},
		{"G302", 18, true, inSource("fixture, never run")},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("findings (-got +want):\n%s", diff)
	}
	for _, f := range out.Findings {
		if f.Suppressed != f.SuppressedInSource() {
			t.Errorf("%s line %d: Suppressed=%v but SuppressedInSource=%v", f.RuleID, f.Line, f.Suppressed, f.SuppressedInSource())
		}
	}
}

// TestFingerprintStable edits a copy of the vuln fixture the way commits
// do and checks which fingerprints change.
func TestFingerprintStable(t *testing.T) {
	t.Parallel()
	dir := copyFixture(t, "vuln")
	cfg, target := setup(t, dir)
	fingerprints := func() map[string]scanner.Finding {
		t.Helper()
		out := scan(t, cfg, target)
		m := make(map[string]scanner.Finding)
		for _, f := range out.Findings {
			if _, dup := m[f.Fingerprint]; dup {
				t.Fatalf("fingerprint %s repeats (%s %s:%d)", f.Fingerprint, f.RuleID, f.File, f.Line)
			}
			m[f.Fingerprint] = f
		}
		return m
	}
	edit := func(file, old, new string) {
		t.Helper()
		path := filepath.Join(dir, file)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), old) {
			t.Fatalf("%s does not contain %q", file, old)
		}
		if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	keys := func(m map[string]scanner.Finding) []string { return slices.Sorted(maps.Keys(m)) }

	before := fingerprints()

	// Move every finding down and edit lines that are not flagged.
	edit("main.go", "// Command vuln", "// Copyright 2026 Vigil.\n\n// Command vuln")
	edit("main.go", "const dbPassword", "// Added above the findings.\n\nfunc helper() int {\n\treturn 42\n}\n\nconst dbPassword")
	edit("main.go", "fmt.Println(string(out))", "fmt.Println(\"output:\", string(out), helper())")
	edit("web/web.go", "// Serve writes", "// Limit is new.\nconst Limit = 1 << 20\n\n// Serve writes")
	edit("store/store.go", "\tname := r.URL.Query().Get(\"name\")", "\t// name is the user's name.\n\tname := r.URL.Query().Get(\"name\")")
	moved := fingerprints()
	if diff := cmp.Diff(keys(moved), keys(before)); diff != "" {
		t.Errorf("fingerprints changed after moving code (-got +want):\n%s", diff)
	}
	for fp, f := range moved {
		if b, ok := before[fp]; ok && f.File == "main.go" && f.Line == b.Line {
			t.Errorf("%s main.go:%d did not move: the edit did not test anything", f.RuleID, f.Line)
		}
	}

	// Change a flagged line: only its findings get new fingerprints.
	edit("main.go", "rand.Intn(100)", "rand.Intn(1000)")
	changed := fingerprints()
	for fp, f := range changed {
		_, old := moved[fp]
		if onEditedLine := strings.Contains(lineOf(t, dir, f), "rand.Intn(1000)"); old == onEditedLine {
			t.Errorf("%s %s:%d: fingerprint kept=%v, but the line was edited=%v", f.RuleID, f.File, f.Line, old, onEditedLine)
		}
	}

	// Two identical flagged lines keep distinct fingerprints, and keep
	// them when more code is added above.
	edit("main.go", "func main() {", "func rolls() []int {\n\tvar r []int\n\tr = append(r, rand.Intn(6))\n\tr = append(r, rand.Intn(6))\n\treturn r\n}\n\nfunc main() {")
	dup := fingerprints()
	var twins []string
	for fp, f := range dup {
		if f.RuleID == "G404" && strings.Contains(lineOf(t, dir, f), "rand.Intn(6)") {
			twins = append(twins, fp)
		}
	}
	if len(twins) != 2 {
		t.Fatalf("got %d G404 findings on the identical lines, want 2", len(twins))
	}
	edit("main.go", "func rolls()", "// rolls rolls two dice.\nfunc rolls()")
	if diff := cmp.Diff(keys(fingerprints()), keys(dup)); diff != "" {
		t.Errorf("fingerprints changed after moving identical lines (-got +want):\n%s", diff)
	}
}

// lineOf returns the source line a finding starts on.
func lineOf(t *testing.T, dir string, f scanner.Finding) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.File)))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	if f.Line < 1 || f.Line > len(lines) {
		t.Fatalf("%s %s:%d: no such line", f.RuleID, f.File, f.Line)
	}
	return lines[f.Line-1]
}

func TestFingerprint(t *testing.T) {
	t.Parallel()
	base := Fingerprint("G404", "main.go", "\tx := rand.Int()", 0)
	if got := Fingerprint("G404", "main.go", "x  :=\trand.Int()  \r", 0); got != base {
		t.Errorf("white space changed the fingerprint: %s, want %s", got, base)
	}
	others := map[string]string{
		"rule":       Fingerprint("G104", "main.go", "\tx := rand.Int()", 0),
		"file":       Fingerprint("G404", "cmd/main.go", "\tx := rand.Int()", 0),
		"code":       Fingerprint("G404", "main.go", "\ty := rand.Int()", 0),
		"occurrence": Fingerprint("G404", "main.go", "\tx := rand.Int()", 1),
	}
	for what, fp := range others {
		if fp == base {
			t.Errorf("a different %s gave the same fingerprint %s", what, fp)
		}
	}
	if len(base) != 32 {
		t.Errorf("fingerprint %q: want 32 hex digits", base)
	}
}

func TestRunCancelled(t *testing.T) {
	t.Parallel()
	t.Run("before", func(t *testing.T) {
		t.Parallel()
		cfg, target := setup(t, filepath.Join("testdata", "vuln"))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		out, err := Engine(cfg).Run(ctx, target)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, %v; want context.Canceled", out, err)
		}
	})
	t.Run("during", func(t *testing.T) {
		t.Parallel()
		cfg, target := setup(t, filepath.Join("testdata", "vuln"))
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		cfg.Progress = func(done, total int) { cancel() }
		out, err := Engine(cfg).Run(ctx, target)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, %v; want context.Canceled", out, err)
		}
	})
}

func TestRunProgress(t *testing.T) {
	t.Parallel()
	cfg, target := setup(t, filepath.Join("testdata", "vuln"))
	cfg.Concurrency = 2
	var mu sync.Mutex
	var got [][2]int
	cfg.Progress = func(done, total int) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, [2]int{done, total})
	}
	scan(t, cfg, target)
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(got, [][2]int{{0, 3}, {1, 3}, {2, 3}, {3, 3}}); diff != "" {
		t.Errorf("progress (-got +want):\n%s", diff)
	}
}

func TestRunPackageErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":  "module example.com/broken\n\ngo 1.24\n",
		"main.go": "package main\n\nimport \"math/rand\"\n\nfunc main() {\n\tvar n int = \"six\"\n\tprintln(n, rand.Int())\n}\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, target := setup(t, dir)
	out := scan(t, cfg, target)
	if diff := cmp.Diff(ruleIDs(out.Findings, false), []string{"G404"}); diff != "" {
		t.Errorf("rule IDs (-got +want):\n%s", diff)
	}
	if !slices.ContainsFunc(out.Warnings, func(w string) bool { return strings.HasPrefix(w, "main.go:6:") }) {
		t.Errorf("warnings %q: want the type error at main.go:6", out.Warnings)
	}
}

func TestRunErrors(t *testing.T) {
	t.Parallel()
	t.Run("broken go.mod", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/x\n\nrequire (\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, target := setup(t, dir)
		// A module that does not load is a part nobody analysed, which
		// the result says and the gate judges; never an empty result.
		out := scan(t, cfg, target)
		if len(out.Unanalysed) != 1 || out.Unanalysed[0].Path != "." || !strings.Contains(out.Unanalysed[0].Reason, "go.mod") {
			t.Errorf("Unanalysed = %+v; want the root module with the go command's reason", out.Unanalysed)
		}
	})
	t.Run("not a module", func(t *testing.T) {
		t.Parallel()
		cfg, target := setup(t, t.TempDir())
		if _, err := Engine(cfg).Run(t.Context(), target); !errors.Is(err, scanner.ErrUsage) {
			t.Errorf("Run = %v; want a usage error", err)
		}
	})
	t.Run("bad config", func(t *testing.T) {
		t.Parallel()
		cfg, target := setup(t, filepath.Join("testdata", "clean"))
		cfg.Concurrency = -1
		if _, err := Engine(cfg).Run(t.Context(), target); !errors.Is(err, scanner.ErrUsage) {
			t.Errorf("Run = %v; want a usage error", err)
		}
	})
}

func TestEngineApplies(t *testing.T) {
	t.Parallel()
	module := filepath.Join("testdata", "clean")
	tests := []struct {
		name   string
		target *scanner.Target
		want   bool
	}{
		{"dir with go.mod", &scanner.Target{Kind: scanner.KindDir, Path: module}, true},
		{"git with go.mod", &scanner.Target{Kind: scanner.KindGit, Path: module}, true},
		{"dir without go.mod", &scanner.Target{Kind: scanner.KindDir, Path: "testdata"}, false},
		{"workspace without go.mod", &scanner.Target{Kind: scanner.KindDir, Path: filepath.Join("testdata", "workspace")}, true},
		{"image", &scanner.Target{Kind: scanner.KindImage, Path: module}, false},
		{"no path", &scanner.Target{Kind: scanner.KindDir}, false},
		{"nil", nil, false},
	}
	e := Engine(nil)
	for _, tt := range tests {
		if got := e.Applies(tt.target); got != tt.want {
			t.Errorf("%s: Applies = %v, want %v", tt.name, got, tt.want)
		}
	}
	if e.ID != "sast" || e.Version != "v2.30.0" {
		t.Errorf("ID, Version = %q, %q; want sast, v2.30.0", e.ID, e.Version)
	}
}
