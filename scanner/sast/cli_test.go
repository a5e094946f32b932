package sast

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// maxCLIBuild bounds how long building the gosec CLI may take. On a cold
// build cache it compiles gosec's AI clients too, which can take minutes;
// warm the cache with `go build github.com/securego/gosec/v2/cmd/gosec`.
const maxCLIBuild = 5 * time.Minute

// buildGosecCLI builds the gosec CLI that go.mod's tool directive names,
// or skips the test when it cannot.
func buildGosecCLI(t *testing.T) string {
	t.Helper()
	budget := maxCLIBuild
	if deadline, ok := t.Deadline(); ok {
		budget = min(budget, time.Until(deadline)/2)
	}
	ctx, cancel := context.WithTimeout(t.Context(), budget)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "gosec")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/securego/gosec/v2/cmd/gosec")
	if out, err := cmd.CombinedOutput(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("not built within %v: %w", budget, ctx.Err())
		}
		t.Skipf("cannot build the gosec CLI to compare with (%v); output:\n%s", err, out)
	}
	return bin
}

// cliLocations runs the gosec CLI with its default settings in dir and
// returns "rule file:line" for each issue that no #nosec suppresses.
func cliLocations(t *testing.T, bin, dir string) []string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, "-fmt=json", "-quiet", "./...")
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	// The CLI exits 1 when it finds issues.
	if exit := (*exec.ExitError)(nil); err != nil && (!errors.As(err, &exit) || exit.ExitCode() != 1) {
		t.Fatalf("gosec CLI in %s: %v\n%s", dir, err, stderr.Bytes())
	}
	if stdout.Len() == 0 { // -quiet prints nothing when there are no issues
		return nil
	}
	var report struct {
		Issues []struct {
			RuleID       string            `json:"rule_id"`
			File         string            `json:"file"`
			Line         string            `json:"line"`
			Suppressions []json.RawMessage `json:"suppressions"`
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &report); err != nil {
		t.Fatalf("gosec CLI output in %s: %v\n%s", dir, err, stdout.Bytes())
	}
	var locs []string
	for _, iss := range report.Issues {
		if len(iss.Suppressions) > 0 {
			continue
		}
		rel, err := filepath.Rel(dir, iss.File)
		if err != nil {
			t.Fatal(err)
		}
		locs = append(locs, fmt.Sprintf("%s %s:%s", iss.RuleID, filepath.ToSlash(rel), iss.Line))
	}
	slices.Sort(locs)
	return locs
}

// TestMatchesGosecCLI checks that the engine finds what the gosec CLI
// finds, at the same places.
func TestMatchesGosecCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the comparison with the gosec CLI in short mode: it builds the CLI")
	}
	t.Parallel()
	bin := buildGosecCLI(t)
	// nested: a clean root module and a nested module with findings;
	// workspace: a go.work whose modules import each other.
	for _, name := range []string{"vuln", "suppressed", "clean", "nested", "workspace"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir, err := filepath.Abs(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			cfg, target := setup(t, dir)
			out := scan(t, cfg, target)
			if len(out.Unanalysed) > 0 {
				t.Errorf("unanalysed parts: %+v", out.Unanalysed)
			}
			var got []string
			for _, f := range out.Findings {
				if f.Suppressed {
					continue
				}
				line := fmt.Sprint(f.Line)
				if f.EndLine > f.Line {
					line += fmt.Sprintf("-%d", f.EndLine)
				}
				got = append(got, fmt.Sprintf("%s %s:%s", f.RuleID, f.File, line))
			}
			slices.Sort(got)
			want := cliLocations(t, bin, dir)
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("unsuppressed findings, engine (-) vs gosec CLI (+):\n%s", diff)
			}
			if name != "clean" && len(want) == 0 {
				t.Errorf("the gosec CLI found nothing in %s: the comparison tests nothing", name)
			}
		})
	}
}
