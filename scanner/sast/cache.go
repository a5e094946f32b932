package sast

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/tools/go/packages"

	"github.com/vigil-sec/vigil/scanner"
)

// cacheConfig names what, beside gosec's version and the scanned files,
// decides the engine's findings: the configuration that changes them and
// the Go toolchain whose standard library and go command type the code.
func (c *Config) cacheConfig() string {
	// "modules=all": since every module of the tree is scanned, outputs
	// cached when only the root module was are not reused.
	return fmt.Sprintf("tests=%t exclude-generated=%t untrusted=%t modules=all go=%s", c.Tests, c.ExcludeGenerated, c.Untrusted, goVersion())
}

// goEnv runs `go env GOVERSION GOROOT` once: the version of the go
// command the packages are loaded with, and its GOROOT (packages under it
// are the standard library, which the version identifies). Both are ""
// when there is no go command (the engine then fails anyway).
var goEnv = sync.OnceValues(func() (version, root string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "env", "GOVERSION", "GOROOT").Output()
	if err != nil {
		return "", ""
	}
	v, r, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if r = strings.TrimSpace(r); r != "" {
		r = filepath.Clean(r)
	}
	return strings.TrimSpace(v), r
})

func goVersion() string { v, _ := goEnv(); return v }

func goRoot() string { _, r := goEnv(); return r }

// buildFlags returns the go command's flags for loading packages: see
// Config.TrimPath. Positions in the scanned packages come from their
// source and do not change either way.
func (e *engine) buildFlags() []string {
	if e.cfg.TrimPath {
		return []string{"-trimpath"}
	}
	return nil
}

// metaMode is what the incremental scan asks of the go command first:
// names, files and the import graph, without compiling or type-checking
// anything.
const metaMode = packages.NeedName | packages.NeedFiles | packages.NeedImports | packages.NeedDeps |
	packages.NeedModule | packages.NeedEmbedFiles

// cachedPackage is one package's part of a scan in the cache: its
// findings before fingerprints, and its warnings.
type cachedPackage struct {
	Items    []item   `json:"items"`
	Warnings []string `json:"warnings,omitempty"`
}

// scanIncremental scans the module at root reusing per-package results
// from c. A package's result is a pure function of its key (packageKeys):
// its files, its imports' keys, gosec's version and configuration and the
// Go toolchain. Only the packages whose key has no result, the changed
// ones and everything that imports them, are loaded (their dependencies'
// types come from export data, as in a full scan) and analysed; the rest
// come from the cache. ok is false when the module cannot be scanned this
// way (a package the go command cannot list): the caller then runs a full
// scan, which reports why.
func (e *engine) scanIncremental(ctx context.Context, c scanner.Cache, lay *layout, m module, root string, prog *progress, warn *warnings) (parts [][]item, ok bool, err error) {
	log := e.cfg.Logger
	start := time.Now()
	listed, err := packages.Load(&packages.Config{Context: ctx, Mode: metaMode, Dir: m.dir, Env: e.env(m, phaseBuild)}, "./...")
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, false, ctxErr
		}
		return nil, false, nil
	}
	listed = lay.owned(m, listed)
	if len(listed) == 0 {
		return nil, false, nil
	}
	for _, p := range listed {
		if len(p.Errors) > 0 || p.Name == "" {
			return nil, false, nil
		}
	}
	keys, err := packageKeys(listed)
	if err != nil {
		log.Debug("sast: no incremental scan", "error", err)
		return nil, false, nil
	}

	prog.start(len(listed))
	var (
		misses []string
		config = e.cfg.cacheConfig()
	)
	// A package's findings name files relative to the target root, so
	// its module's place in the tree is part of the key.
	cacheKey := func(pkgKey string) string {
		return scanner.CacheKey("sast-package", gosecVersion(), config, "module-dir:"+m.rel, pkgKey)
	}
	for _, p := range listed {
		b, hit, gerr := c.Get(ctx, cacheKey(keys[p]))
		var cp cachedPackage
		if gerr != nil || !hit || json.Unmarshal(b, &cp) != nil {
			misses = append(misses, p.PkgPath)
			continue
		}
		parts = append(parts, cp.Items)
		for _, w := range cp.Warnings {
			warn.add(w)
		}
		prog.step()
	}
	log.Debug("sast: packages listed", "module", m.rel, "packages", len(listed), "cached", len(listed)-len(misses), "elapsed", time.Since(start))

	if len(misses) > 0 {
		start = time.Now()
		// Only the changed packages are loaded from source and analysed;
		// what they import, in the module or not, is typed from export
		// data, which the go command compiles once (per content with
		// Config.TrimPath). A package's findings depend only on its own syntax
		// and on the types of its imports, which are the same either way
		// (TestIncrementalEqualsFullScan compares with a full scan).
		load := misses
		loaded, err := packages.Load(&packages.Config{Context: ctx, Mode: listMode, Dir: m.dir, Env: e.env(m, phaseBuild), BuildFlags: e.buildFlags()}, load...)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return nil, false, ctxErr
			}
			return nil, false, goError(err)
		}
		if len(loaded) != len(load) {
			return nil, false, nil
		}
		var pkgs []*packages.Package
		for _, p := range loaded {
			if slices.Contains(misses, p.PkgPath) {
				pkgs = append(pkgs, p)
			}
		}
		if len(pkgs) != len(misses) {
			return nil, false, nil
		}
		byPath := make(map[string]string, len(listed))
		for _, p := range listed {
			byPath[p.PkgPath] = keys[p]
		}
		for _, p := range pkgs {
			if _, known := byPath[p.PkgPath]; !known {
				return nil, false, nil
			}
		}
		log.Debug("sast: changed packages loaded", "packages", len(pkgs), "elapsed", time.Since(start))
		start = time.Now()
		results := e.analyse(ctx, pkgs, prog, warn)
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		for _, r := range results {
			items, ws := toItems(root, r.issues)
			cp := cachedPackage{Items: items, Warnings: slices.Concat(r.loadWarnings, r.warnings, ws)}
			parts = append(parts, items)
			for _, w := range cp.Warnings {
				warn.add(w)
			}
			if b, err := json.Marshal(cp); err == nil {
				_ = c.Put(ctx, cacheKey(byPath[r.pkg.PkgPath]), b)
			}
		}
		log.Debug("sast: changed packages analysed", "packages", len(pkgs), "elapsed", time.Since(start))
	}
	return parts, true, nil
}

// packageKeys gives every listed package, and every package they import,
// a key that changes whenever anything its analysis reads may change: a
// package of a module version in the module cache is named by that
// version, one of the standard library by its path (the Go version is in
// the engine's configuration), any other by the SHA-256 of its import
// path, name, files (Go, other and embedded, by name and content) and the
// keys of its imports.
func packageKeys(roots []*packages.Package) (map[*packages.Package]string, error) {
	keys := map[*packages.Package]string{}
	goroot := goRoot()
	var key func(p *packages.Package) (string, error)
	key = func(p *packages.Package) (string, error) {
		if k, ok := keys[p]; ok {
			return k, nil
		}
		var k string
		switch m := p.Module; {
		case m != nil && m.Replace != nil && m.Replace.Version != "":
			k = "module:" + m.Path + "@" + m.Version + "=>" + m.Replace.Path + "@" + m.Replace.Version + ":" + p.PkgPath
		case m != nil && m.Replace == nil && !m.Main && m.Version != "":
			k = "module:" + m.Path + "@" + m.Version + ":" + p.PkgPath
		case m == nil && goroot != "" && len(p.GoFiles) > 0 && isInside(goroot, p.GoFiles[0]):
			k = "std:" + p.PkgPath
		default:
			h := sha256.New()
			fmt.Fprintf(h, "package\x00%s\x00%s\x00", p.PkgPath, p.Name)
			for _, group := range [][]string{p.GoFiles, p.OtherFiles, p.EmbedFiles} {
				files := slices.Sorted(slices.Values(group))
				for _, f := range files {
					data, err := os.ReadFile(f)
					if err != nil {
						return "", fmt.Errorf("package %s: %w", p.PkgPath, err)
					}
					sum := sha256.Sum256(data)
					fmt.Fprintf(h, "file\x00%s\x00%x\x00", filepath.Base(f), sum)
				}
				h.Write([]byte("group\x00"))
			}
			for _, path := range slices.Sorted(maps.Keys(p.Imports)) {
				dk, err := key(p.Imports[path])
				if err != nil {
					return "", err
				}
				fmt.Fprintf(h, "import\x00%s\x00%s\x00", path, dk)
			}
			k = "files:" + hex.EncodeToString(h.Sum(nil))
		}
		keys[p] = k
		return k, nil
	}
	for _, p := range roots {
		if _, err := key(p); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// isInside reports whether file is under dir.
func isInside(dir, file string) bool {
	_, ok := relInside(dir, file)
	return ok
}
