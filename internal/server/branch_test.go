package server_test

import (
	"context"
	"testing"

	"github.com/vigil-sec/vigil/internal/gittest"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

// A caller cannot make a commit a default-branch scan: the branch comes
// from the repository. An unmerged commit labelled main, by the API or by
// a push webhook's ref, neither becomes the change gates' baseline nor
// marks findings fixed.
func TestBranchComesFromTheRepository(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)
		ctx := context.Background()
		r := gittest.New(t)
		base := r.Commit("weak random twice", map[string]string{
			"go.mod":       goMod,
			"main.go":      weakMain,
			"tools/gen.go": "package tools\n\nimport \"math/rand\"\n\nfunc Gen() int { return rand.Intn(7) }\n",
		})
		r.Git("checkout", "-q", "-b", "fix-main")
		fixMain := r.Commit("main: no weak random", map[string]string{"main.go": "package main\n\nfunc main() { println(3) }\n"})
		r.Git("checkout", "-q", "-b", "fix-tools", base)
		fixTools := r.Commit("tools: no weak random", map[string]string{"tools/gen.go": "package tools\n\nfunc Gen() int { return 7 }\n"})
		r.Git("checkout", "-q", "-b", "docs", base)
		docs := r.Commit("docs", map[string]string{"README": "hello\n"})
		r.Git("checkout", "-q", "main")
		e.createProject("app", "file://"+r.Dir)
		pid := mustProject(t, e.db, "app")

		e.scanOn(base, "feature")   // on main whatever the caller says
		e.scanOn(fixMain, "main")   // unmerged, posted as main
		e.push(r, "main", fixTools) // unmerged, pushed as main

		for commit, want := range map[string]string{base: "main", fixMain: "fix-main", fixTools: "fix-tools"} {
			sc, err := e.db.FindCommitScan(ctx, pid, commit)
			if err != nil {
				t.Fatal(err)
			}
			if sc.Branch != want {
				t.Errorf("branch of %s: %q, want %q", commit[:8], sc.Branch, want)
			}
		}
		for _, f := range e.findings("").Findings {
			if f.FixedIn != nil || f.State == "fixed" {
				t.Errorf("%s in %s marked fixed by an unmerged commit: %+v", f.RuleID, f.File, f.FixedIn)
			}
		}
		// The baseline of a change gate is base, the default branch's
		// scan, so docs brings nothing new.
		e.scanOn(docs, "main")
		if g := e.gate(docs); g.Decision != "pass" {
			t.Errorf("gate of docs: %+v, want pass against the main baseline", g)
		}

		// Merged: now main reaches the fix, and its next scan fixes.
		r.Git("merge", "-q", "--ff-only", "fix-main")
		merged := r.Commit("changelog", map[string]string{"CHANGELOG": "x\n"})
		e.scanOn(merged, "some-feature")
		fixed := 0
		for _, f := range e.findings("&state=fixed").Findings {
			if f.File != "main.go" {
				t.Errorf("%s fixed, want main.go only", f.File)
			}
			fixed++
		}
		if fixed != 1 {
			t.Errorf("%d findings fixed after the merge, want 1 (main.go)", fixed)
		}
	})
}
