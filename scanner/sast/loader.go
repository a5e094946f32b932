package sast

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/scanner"
	"go/token"
	"go/types"
	"os"

	"golang.org/x/tools/go/gcexportdata"
	"golang.org/x/tools/go/packages"
)

// listMode is what the one `go list -deps -export -compiled` of a module
// asks for: every package's files, imports and compiled export data, and
// no syntax or types. Packages are then parsed and type-checked one at a
// time (typeCheck), their imports typed from export data, which is what
// packages.Load does for gosec.LoadMode too, but without holding every
// package of the module at once.
const listMode = packages.NeedName | packages.NeedFiles | packages.NeedCompiledGoFiles |
	packages.NeedImports | packages.NeedDeps | packages.NeedModule | packages.NeedEmbedFiles |
	packages.NeedEmbedPatterns | packages.NeedExportFile | packages.NeedTypesSizes

// importBatch is how many packages a worker type-checks with the same
// imported types before it lets them go. Packages next to each other in
// the listing share most of their imports, so a batch reads each import's
// export data once; dropping them after a batch bounds what a worker holds
// whatever the module's size.
const importBatch = 16

// exportImporter types imports from the export data the go command
// compiled. It is used by one worker at a time.
type exportImporter struct {
	fset *token.FileSet
	pkgs map[string]*types.Package // by package path
	used int                       // packages checked with these types
}

func newExportImporter() *exportImporter {
	return &exportImporter{fset: token.NewFileSet(), pkgs: map[string]*types.Package{}}
}

// typeCheck parses pkg's compiled Go files and type-checks them, typing
// its imports from their export data, and fills in the fields gosec reads
// (Fset, Syntax, Types, TypesInfo, TypesSizes, Errors, IllTyped) as
// packages.Load does for a package it loads from source. imp may be
// replaced by a fresh one (a batch is over, or pkg is a test variant,
// whose imports differ from the packages' of the same path).
func typeCheck(imp **exportImporter, pkg *packages.Package) {
	if *imp == nil || (*imp).used >= importBatch || pkg.ForTest != "" {
		*imp = newExportImporter()
	}
	im := *imp
	im.used++
	if pkg.ForTest != "" {
		// The next package must not see this one's test variants.
		im.used = importBatch
	}
	pkg.Fset = im.fset

	var files []*ast.File
	for _, name := range pkg.CompiledGoFiles {
		f, err := parser.ParseFile(im.fset, name, nil, parser.AllErrors|parser.ParseComments)
		if f != nil {
			files = append(files, f)
		}
		var list scanner.ErrorList
		var pathErr *os.PathError
		switch {
		case err == nil:
		case errors.As(err, &list):
			for _, e := range list {
				pkg.Errors = append(pkg.Errors, packages.Error{Pos: e.Pos.String(), Msg: e.Msg, Kind: packages.ParseError})
			}
		case errors.As(err, &pathErr):
			pkg.Errors = append(pkg.Errors, packages.Error{Pos: pathErr.Path + ":1", Msg: pathErr.Err.Error(), Kind: packages.ParseError})
		default:
			pkg.Errors = append(pkg.Errors, packages.Error{Pos: "-", Msg: err.Error(), Kind: packages.UnknownError})
		}
	}
	pkg.Syntax = files

	importFailed := false
	tc := &types.Config{
		Importer: importerFunc(func(path string) (*types.Package, error) {
			t, err := im.importPath(pkg, path)
			if err != nil {
				importFailed = true
			}
			return t, err
		}),
		Sizes: pkg.TypesSizes,
		Error: func(err error) {
			var te types.Error
			if errors.As(err, &te) {
				pkg.TypeErrors = append(pkg.TypeErrors, te)
				pkg.Errors = append(pkg.Errors, packages.Error{Pos: te.Fset.Position(te.Pos).String(), Msg: te.Msg, Kind: packages.TypeError})
				return
			}
			pkg.Errors = append(pkg.Errors, packages.Error{Pos: "-", Msg: err.Error(), Kind: packages.UnknownError})
		},
	}
	if pkg.Module != nil && pkg.Module.GoVersion != "" {
		tc.GoVersion = "go" + pkg.Module.GoVersion
	}
	pkg.Types = types.NewPackage(pkg.PkgPath, pkg.Name)
	pkg.TypesInfo = &types.Info{
		Types:        make(map[ast.Expr]types.TypeAndValue),
		Defs:         make(map[*ast.Ident]types.Object),
		Uses:         make(map[*ast.Ident]types.Object),
		Implicits:    make(map[ast.Node]types.Object),
		Instances:    make(map[*ast.Ident]types.Instance),
		Scopes:       make(map[ast.Node]*types.Scope),
		Selections:   make(map[*ast.SelectorExpr]*types.Selection),
		FileVersions: make(map[*ast.File]string),
	}
	err := types.NewChecker(tc, im.fset, pkg.Types, pkg.TypesInfo).Files(files)
	if err != nil && len(pkg.Errors) == 0 {
		pkg.Errors = append(pkg.Errors, packages.Error{Pos: "-", Msg: err.Error(), Kind: packages.UnknownError})
	}
	pkg.IllTyped = len(pkg.Errors) > 0 || importFailed
}

// release lets a package's syntax and types go once it is analysed: its
// result is kept, and nothing else reads them.
func release(pkg *packages.Package) {
	pkg.Syntax, pkg.TypesInfo, pkg.Types, pkg.Fset, pkg.TypeErrors = nil, nil, nil, nil, nil
}

// importPath returns the types of the package that from imports as path.
func (im *exportImporter) importPath(from *packages.Package, path string) (*types.Package, error) {
	if path == "unsafe" {
		return types.Unsafe, nil
	}
	dep := from.Imports[path]
	if dep == nil {
		return nil, fmt.Errorf("no metadata for %s", path)
	}
	if t := im.pkgs[dep.PkgPath]; t != nil && t.Complete() {
		return t, nil
	}
	if dep.PkgPath == "unsafe" {
		return types.Unsafe, nil
	}
	if dep.ExportFile == "" {
		return nil, fmt.Errorf("no export data for %s", dep.PkgPath)
	}
	f, err := os.Open(dep.ExportFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := gcexportdata.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("reading export data of %s: %w", dep.PkgPath, err)
	}
	t, err := gcexportdata.Read(r, im.fset, im.pkgs, dep.PkgPath)
	if err != nil {
		return nil, fmt.Errorf("reading export data of %s: %w", dep.PkgPath, err)
	}
	return t, nil
}

type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }
