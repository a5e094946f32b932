package sbom

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/anchore/stereoscope/pkg/file"
	syftfile "github.com/anchore/syft/syft/file"
	"github.com/anchore/syft/syft/format/syftjson"
	syftsbom "github.com/anchore/syft/syft/sbom"
	"github.com/anchore/syft/syft/source"
	"github.com/bmatcuk/doublestar/v4"

	"github.com/vigil-sec/vigil/scanner"
)

// Reuse across commits. syft catalogs a directory by asking its resolver
// for files (by path, by glob, by MIME type) and reading some of them; its
// SBOM is a function of the answers. For a commit of a repository scanned
// before, the SBOM of the last commit cataloged is reused when none of the
// files that differ between the two trees (git knows them without reading
// the files) would change an answer syft got: no changed path was read or
// asked for, matches a glob it searched, or had, or now has, a MIME type it
// searched. A commit that changes Go code but no go.mod, lock file or
// binary therefore does not catalog the tree again. A walk over every path
// (syft's nix cataloger does one) makes any file added or removed count;
// anything syft asked for inside .git, which git does not list, makes the
// run not reusable.

// treeCacheVersion changes when the cached form or the rule changes.
const treeCacheVersion = "tree-v1"

// treeRun is the last catalog of a repository in the cache.
type treeRun struct {
	// Tree maps each file git lists ("/path") to its object ID and mode.
	Tree      map[string]string `json:"tree"`
	Paths     []string          `json:"paths"`
	Globs     []string          `json:"globs"`
	MIMETypes []string          `json:"mime_types"`
	MIMEPaths []string          `json:"mime_paths"`
	// AllPaths says syft walked every path.
	AllPaths   bool                `json:"all_paths"`
	Components []scanner.Component `json:"components"`
	Document   json.RawMessage     `json:"document"`
}

func treeRunKey(ref string) string {
	return scanner.CacheKey("sbom-tree", treeCacheVersion, SyftVersion(), syftConfig, ref)
}

// gitTree lists the files of the commit checked out at dir.
func gitTree(ctx context.Context, dir string) (map[string]string, error) {
	cmd := exec.CommandContext(ctx, "git", "ls-tree", "-r", "-z", "--full-tree", "HEAD")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("listing the tree of %s: %w", dir, err)
	}
	tree := map[string]string{}
	for entry := range strings.SplitSeq(string(out), "\x00") {
		if entry == "" {
			continue
		}
		meta, path, ok := strings.Cut(entry, "\t")
		f := strings.Fields(meta) // mode type object
		if !ok || len(f) != 3 {
			return nil, fmt.Errorf("listing the tree of %s: bad entry %q", dir, entry)
		}
		tree["/"+path] = f[2] + " " + f[0]
	}
	return tree, nil
}

// generateTree catalogs the commit checked out at t.Path, reusing the
// repository's last catalog when the changes since cannot alter it. ok is
// false when it did nothing (not a git checkout): the caller catalogs the
// usual way.
func generateTree(ctx context.Context, c scanner.Cache, t *scanner.Target, cfg *Config) (s *scanner.SBOM, ok bool, err error) {
	tree, err := gitTree(ctx, t.Path)
	if err != nil {
		return nil, false, nil
	}
	key := treeRunKey(t.Ref)
	if b, hit, gerr := c.Get(ctx, key); gerr == nil && hit {
		var last treeRun
		if json.Unmarshal(b, &last) == nil && last.reusable(t.Path, tree) {
			doc, _, _, derr := syftjson.NewFormatDecoder().Decode(bytes.NewReader(last.Document))
			if derr == nil {
				cfg.progress(fmt.Sprintf("found %d packages (the last commit's catalog: no file it depends on changed)", len(last.Components)))
				return &scanner.SBOM{Components: last.Components, Document: doc}, true, nil
			}
		}
	}

	var rec *recordingResolver
	s, err = catalog(ctx, t, cfg, func(src source.Source) (source.Source, error) {
		inner, err := src.FileResolver(source.SquashedScope)
		if err != nil {
			return nil, err
		}
		rec = &recordingResolver{Resolver: inner, run: treeRun{Tree: tree}}
		return &layerSource{Source: src, resolver: rec}, nil
	})
	if err != nil {
		return nil, true, err
	}
	if run, keep := rec.finish(); keep {
		var buf bytes.Buffer
		if doc, isDoc := s.Document.(*syftsbom.SBOM); isDoc && syftjson.NewFormatEncoder().Encode(&buf, *doc) == nil {
			run.Components, run.Document = s.Components, buf.Bytes()
			if b, err := json.Marshal(run); err == nil {
				if r, canReplace := c.(scanner.Replacer); canReplace {
					_ = r.Replace(ctx, key, b)
				} else {
					_ = c.Put(ctx, key, b)
				}
			}
		}
	}
	return s, true, nil
}

// reusable reports whether the run's catalog holds for the tree checked
// out at dir.
func (r *treeRun) reusable(dir string, tree map[string]string) bool {
	var changed []string
	for p, id := range tree {
		if r.Tree[p] != id {
			changed = append(changed, p)
		}
	}
	for p := range r.Tree {
		if _, ok := tree[p]; !ok {
			changed = append(changed, p)
		}
	}
	if r.AllPaths {
		for _, p := range changed {
			_, before := r.Tree[p]
			_, now := tree[p]
			if before != now {
				return false // a file added or removed
			}
		}
	}
	for _, p := range changed {
		if slices.Contains(r.Paths, p) || slices.Contains(r.MIMEPaths, p) {
			return false
		}
		for _, g := range r.Globs {
			if globMatch(g, p) {
				return false
			}
		}
		if len(r.MIMETypes) > 0 {
			if _, exists := tree[p]; exists && slices.Contains(r.MIMETypes, mimeType(filepath.Join(dir, filepath.FromSlash(p)))) {
				return false
			}
		}
	}
	return true
}

// globMatch matches a syft glob against a "/path", with and without the
// leading slash (syft's patterns come both ways).
func globMatch(pattern, path string) bool {
	for _, p := range []string{path, strings.TrimPrefix(path, "/")} {
		if ok, err := doublestar.Match(pattern, p); err != nil || ok {
			return true // a pattern that cannot be matched counts as a match
		}
	}
	return false
}

func mimeType(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	return file.MIMEType(f)
}

// recordingResolver records what syft asks of a directory.
type recordingResolver struct {
	syftfile.Resolver

	mu    sync.Mutex
	run   treeRun
	spoil bool // syft looked inside .git, which the tree does not list
}

func (r *recordingResolver) note(paths []string, globs []string, mimes []string, found []syftfile.Location) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range paths {
		r.path(p)
	}
	r.run.Globs = append(r.run.Globs, globs...)
	r.run.MIMETypes = append(r.run.MIMETypes, mimes...)
	for _, l := range found {
		r.path(l.RealPath)
		if len(mimes) > 0 {
			r.run.MIMEPaths = append(r.run.MIMEPaths, l.RealPath)
		}
	}
}

// path records a path asked for; mu is held.
func (r *recordingResolver) path(p string) {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	if _, inTree := r.run.Tree[p]; !inTree && (p == "/.git" || strings.HasPrefix(p, "/.git/")) {
		r.spoil = true
	}
	r.run.Paths = append(r.run.Paths, p)
}

// finish returns what was recorded, and whether the run can be reused.
func (r *recordingResolver) finish() (treeRun, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	run := r.run
	for _, s := range []*[]string{&run.Paths, &run.Globs, &run.MIMETypes, &run.MIMEPaths} {
		slices.Sort(*s)
		*s = slices.Compact(*s)
	}
	return run, !r.spoil
}

func (r *recordingResolver) FileContentsByLocation(l syftfile.Location) (io.ReadCloser, error) {
	r.note([]string{l.RealPath}, nil, nil, nil)
	return r.Resolver.FileContentsByLocation(l)
}

func (r *recordingResolver) FileMetadataByLocation(l syftfile.Location) (syftfile.Metadata, error) {
	r.note([]string{l.RealPath}, nil, nil, nil)
	return r.Resolver.FileMetadataByLocation(l)
}

func (r *recordingResolver) HasPath(p string) bool {
	r.note([]string{p}, nil, nil, nil)
	return r.Resolver.HasPath(p)
}

func (r *recordingResolver) FilesByPath(paths ...string) ([]syftfile.Location, error) {
	locs, err := r.Resolver.FilesByPath(paths...)
	r.note(paths, nil, nil, locs)
	return locs, err
}

func (r *recordingResolver) FilesByGlob(patterns ...string) ([]syftfile.Location, error) {
	locs, err := r.Resolver.FilesByGlob(patterns...)
	r.note(nil, patterns, nil, locs)
	return locs, err
}

func (r *recordingResolver) FilesByMIMEType(types ...string) ([]syftfile.Location, error) {
	locs, err := r.Resolver.FilesByMIMEType(types...)
	r.note(nil, nil, types, locs)
	return locs, err
}

func (r *recordingResolver) RelativeFileByPath(from syftfile.Location, p string) *syftfile.Location {
	l := r.Resolver.RelativeFileByPath(from, p)
	if strings.HasPrefix(p, "/") {
		r.note([]string{p}, nil, nil, nil)
	} else {
		// Relative to a file somewhere: any file of that name counts.
		r.note(nil, []string{"**/" + strings.TrimPrefix(p, "./")}, nil, nil)
	}
	if l != nil {
		r.note([]string{l.RealPath}, nil, nil, nil)
	}
	return l
}

func (r *recordingResolver) AllLocations(ctx context.Context) <-chan syftfile.Location {
	// The walk reads paths, not contents (those go through the other
	// methods): a file added or removed changes its answer.
	r.mu.Lock()
	r.run.AllPaths = true
	r.mu.Unlock()
	return r.Resolver.AllLocations(ctx)
}
