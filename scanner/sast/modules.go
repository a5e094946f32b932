package sast

import (
	"cmp"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/mod/modfile"

	"github.com/vigil-sec/vigil/scanner"
)

// maxWorkFile bounds how much of a go.work file is read.
const maxWorkFile = 1 << 20

// module is one Go module of the target, analysed on its own: the go
// command runs in its folder.
type module struct {
	// dir is the module's folder, absolute.
	dir string
	// rel is dir relative to the target root, slash-separated; "." is the
	// root.
	rel string
	// gowork is the GOWORK the go command runs with: the go.work file of
	// the workspace that lists the module, or "off".
	gowork string
}

// layout is the target's modules and the parts of it that cannot be
// analysed before any go command runs (a go.work that does not parse).
type layout struct {
	modules    []module
	unanalysed []scanner.Unanalysed
	warnings   []string
}

// findModules finds every Go module in the tree at root, as the gosec
// CLI's folder walk sees them: every folder with a go.mod file, nested
// ones included, skipping the folders the go command's "./..." skips
// (vendor, testdata, names starting with "." or "_"); and every module a
// go.work file in the tree uses, when it lies inside root. Symbolic links
// are not followed. Modules are sorted by folder, the root first.
//
// Each module runs the go command with the workspace that lists it: the
// nearest go.work at or above its folder, up to root, when that file uses
// the module, else another go.work of the tree that uses it, and
// GOWORK=off otherwise, so that a go.work outside the tree never applies
// and a module its workspace leaves out still loads.
func findModules(root string) (*layout, error) {
	l := &layout{}
	dirs := map[string]bool{}
	var works []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == root {
				return err
			}
			l.warnings = append(l.warnings, fmt.Sprintf("%s: not searched for go modules: %v", rel(root, path), err))
			return nil
		}
		if d.IsDir() {
			if path != root && skipDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		switch d.Name() {
		case "go.mod":
			dirs[filepath.Dir(path)] = true
		case "go.work":
			works = append(works, path)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(works)

	// uses maps a go.work file to the module folders it uses.
	uses := map[string]map[string]bool{}
	for _, w := range works {
		used, err := workUses(w)
		if err != nil {
			l.unanalysed = append(l.unanalysed, scanner.Unanalysed{Engine: ID, Path: rel(root, w), Reason: err.Error()})
			continue
		}
		uses[w] = map[string]bool{}
		for _, u := range used {
			if _, inside := relInside(root, u); !inside {
				l.warnings = append(l.warnings, fmt.Sprintf("%s uses %s, outside the target: not scanned", rel(root, w), u))
				continue
			}
			if fi, err := os.Stat(filepath.Join(u, "go.mod")); err != nil || !fi.Mode().IsRegular() {
				l.unanalysed = append(l.unanalysed, scanner.Unanalysed{Engine: ID, Path: rel(root, u),
					Reason: fmt.Sprintf("%s uses this folder, which has no go.mod", rel(root, w))})
				continue
			}
			uses[w][u] = true
			dirs[u] = true
		}
	}

	for dir := range dirs {
		m := module{dir: dir, rel: rel(root, dir), gowork: "off"}
		for d := dir; ; d = filepath.Dir(d) {
			w := filepath.Join(d, "go.work")
			if slices.Contains(works, w) {
				if uses[w][dir] {
					m.gowork = w
				}
				break
			}
			if d == root || filepath.Dir(d) == d {
				break
			}
		}
		if m.gowork == "off" {
			// A workspace elsewhere in the tree may use it (use ../x).
			for _, w := range works {
				if uses[w][dir] {
					m.gowork = w
					break
				}
			}
		}
		l.modules = append(l.modules, m)
	}
	slices.SortFunc(l.modules, func(a, b module) int {
		return cmp.Or(cmp.Compare(notRoot(a.rel), notRoot(b.rel)), cmp.Compare(a.rel, b.rel))
	})
	slices.SortFunc(l.unanalysed, func(a, b scanner.Unanalysed) int { return cmp.Compare(a.Path, b.Path) })
	return l, nil
}

// notRoot is 0 for the root module and 1 for the others.
func notRoot(rel string) int {
	if rel == "." {
		return 0
	}
	return 1
}

// skipDir reports whether the go command's "./..." skips a folder of this
// name.
func skipDir(name string) bool {
	return name == "vendor" || name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")
}

// workUses returns the absolute, cleaned folders a go.work file uses.
func workUses(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxWorkFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxWorkFile {
		return nil, fmt.Errorf("go.work is larger than %d bytes", maxWorkFile)
	}
	wf, err := modfile.ParseWork(path, data, nil)
	if err != nil {
		return nil, fmt.Errorf("go.work does not parse: %w", err)
	}
	var out []string
	for _, u := range wf.Use {
		p := filepath.FromSlash(u.Path)
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(path), p)
		}
		out = append(out, filepath.Clean(p))
	}
	return out, nil
}

// rel returns path relative to root, slash-separated ("." for root); a
// path outside root is returned as it is.
func rel(root, path string) string {
	if r, ok := relInside(root, path); ok {
		return r
	}
	return path
}
