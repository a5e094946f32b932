package store_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// domains are the directories of the domain packages: they declare the
// small store interface each needs, and this package implements it
// (DESIGN.md), so none of their non-test files may import internal/store.
// Tests may: storetest is how they get a real database.
var domains = []string{"licensing", "ci", "scanner", "reports"}

// notYet lists the domain packages that still import internal/store while
// issue 9 moves them; remove a package here when it stops.
var notYet = map[string]bool{}

func TestDomainsDoNotImportStore(t *testing.T) {
	t.Parallel()
	const module = "github.com/vigil-sec/vigil/"
	root := filepath.Join("..", "..")
	checked := 0
	for _, dom := range domains {
		err := filepath.WalkDir(filepath.Join(root, dom), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
			if err != nil {
				return err
			}
			checked++
			rel, _ := filepath.Rel(root, filepath.Dir(path))
			pkg := filepath.ToSlash(rel)
			for _, imp := range f.Imports {
				p, err := strconv.Unquote(imp.Path.Value)
				if err != nil {
					return err
				}
				if (p == module+"internal/store" || strings.HasPrefix(p, module+"internal/store/")) && !notYet[pkg] {
					t.Errorf("%s imports %s: declare the store interface the domain needs in %s instead", path, p, pkg)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if checked < 50 {
		t.Fatalf("checked only %d files: the walk did not find the domain packages", checked)
	}
}
