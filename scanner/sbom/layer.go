package sbom

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"

	"github.com/anchore/syft/syft"
	"github.com/anchore/syft/syft/artifact"
	"github.com/anchore/syft/syft/file"
	"github.com/anchore/syft/syft/format/syftjson"
	"github.com/anchore/syft/syft/pkg"
	syftsbom "github.com/anchore/syft/syft/sbom"
	"github.com/anchore/syft/syft/source"

	"github.com/vigil-sec/vigil/scanner"
)

// The layer cache. An image's packages are cataloged one layer at a time,
// and each layer's catalog is kept in the scan cache by the layer's diff
// ID, so that an image sharing layers with one scanned before (a new
// application layer on the same base) only catalogs its new layers.
//
// Cataloging layer L runs syft's catalogers over a resolver (layerResolver)
// that finds evidence only among the files L itself holds, and reads every
// other file a cataloger asks for by path (/etc/os-release for the distro,
// a package's copyright file in a lower layer) from the image's final
// filesystem. Those other paths, and which layer holds each of them in
// the image, are recorded with the catalog: a catalog is reused only in an
// image where every recorded path comes from the same layer (or is absent
// alike), so a cached catalog never reflects a context other than the
// image's own.
//
// Merging keeps a package only where the image's final filesystem still
// holds its primary evidence from the layer the package was found in: a
// later layer that deletes (whiteout) or replaces the file drops it; the
// later layer's own copy, if any, brings its own packages.
//
// Limits, for which the scan falls back to cataloging the image whole:
// syft drops a binary package whose file an OS package owns; when the
// binary and the owning OS package's database come from different layers,
// no single layer's run sees both, so such an image is cataloged whole.
// Relationships between packages of different layers (file ownership
// overlap, "contains") are not in a layered document; everything about
// each package (name, version, type, purl, licenses, locations, layer) is.

// layerCacheVersion changes when the cached form of a layer's catalog or
// the way it is made changes.
const layerCacheVersion = "layer-v1"

// layerCatalog is one layer's catalog in the cache: the syft document of
// the packages found in the layer, and the paths read from the rest of the
// image, with the layer each came from there ("" when absent).
type layerCatalog struct {
	Document json.RawMessage   `json:"document"`
	Context  map[string]string `json:"context"`
}

// layerStats says how a layered catalog went, for logs and tests.
type layerStats struct {
	Layers, Cataloged int
}

// errLayeredFallback means the image cannot be cataloged layer by layer
// faithfully: the caller catalogs it whole.
var errLayeredFallback = errors.New("the image needs a whole-image catalog")

// generateLayered catalogs the image of t layer by layer through cache c.
func generateLayered(ctx context.Context, c scanner.Cache, t *scanner.Target, cfg *Config) (*scanner.SBOM, layerStats, error) {
	img, cleanup, err := readImage(ctx, t, cfg)
	if err != nil {
		return nil, layerStats{}, err
	}
	defer func() {
		if err := cleanup(); err != nil {
			cfg.Logger.Warn("removing temporary files", "engine", ID, "target", t.Ref, "error", err)
		}
	}()
	src := imageSyftSource(img, t)
	squash, err := src.FileResolver(source.SquashedScope)
	if err != nil {
		return nil, layerStats{}, err
	}
	all, err := src.FileResolver(source.AllLayersScope)
	if err != nil {
		return nil, layerStats{}, err
	}
	final := &finalView{squash: squash, seen: map[string]string{}}

	// One license scanner for every layer's run: syft builds one per
	// run otherwise, which costs about a CPU-second each.
	sbomCfg := syft.DefaultCreateSBOMConfig().WithTool("syft", SyftVersion())
	lctx, err := syft.SetContextLicenseScanner(ctx, sbomCfg.Licenses)
	if err != nil {
		return nil, layerStats{}, err
	}
	stats := layerStats{Layers: len(img.Layers)}
	docs := make([]*syftsbom.SBOM, len(img.Layers))
	for i, layer := range img.Layers {
		if err := ctx.Err(); err != nil {
			return nil, stats, err
		}
		diffID := layer.Metadata.Digest
		doc, hit := cachedLayer(ctx, c, diffID, final)
		if !hit {
			cfg.progress(fmt.Sprintf("cataloging layer %d/%d %s", i+1, len(img.Layers), diffID))
			stats.Cataloged++
			lr := &layerResolver{layer: diffID, all: all, final: final, context: map[string]string{}}
			doc, err = syft.CreateSBOM(lctx, &layerSource{Source: src, resolver: lr}, sbomCfg)
			if err != nil {
				return nil, stats, fmt.Errorf("cataloging layer %s of %s: %w", diffID, t.Ref, err)
			}
			storeLayer(ctx, c, diffID, doc, lr.recorded(), final)
		}
		docs[i] = doc
	}

	doc, err := mergeLayers(docs, final)
	if err != nil {
		return nil, stats, err
	}
	doc.Source = src.Describe()
	doc.Descriptor = syftsbom.Descriptor{Name: "syft", Version: SyftVersion()}
	comps := components(doc, true)
	cfg.progress(fmt.Sprintf("found %d packages (%d of %d layers cataloged, the rest from the layer cache)", len(comps), stats.Cataloged, stats.Layers))
	return &scanner.SBOM{Components: comps, Document: doc}, stats, nil
}

// layerContextKey is the cache key of the paths a layer's first catalog
// read from other layers; layerCatalogKey, of its catalog for one
// resolution of such paths.
func layerContextKey(diffID string) string {
	return scanner.CacheKey("sbom-layer-context", layerCacheVersion, SyftVersion(), syftConfig, diffID)
}

func layerCatalogKey(diffID string, context map[string]string) string {
	parts := []string{"sbom-layer", layerCacheVersion, SyftVersion(), syftConfig, diffID}
	for _, p := range slices.Sorted(maps.Keys(context)) {
		parts = append(parts, p, context[p])
	}
	return scanner.CacheKey(parts...)
}

// cachedLayer returns the layer's cached catalog if one was made in the
// same context: every path it read from other layers resolves in this
// image as it did then.
func cachedLayer(ctx context.Context, c scanner.Cache, diffID string, final *finalView) (*syftsbom.SBOM, bool) {
	b, ok, err := c.Get(ctx, layerContextKey(diffID))
	if err != nil || !ok {
		return nil, false
	}
	var paths []string
	if json.Unmarshal(b, &paths) != nil {
		return nil, false
	}
	context := make(map[string]string, len(paths))
	for _, p := range paths {
		context[p] = final.owner(p)
	}
	if b, ok, err = c.Get(ctx, layerCatalogKey(diffID, context)); err != nil || !ok {
		return nil, false
	}
	var lc layerCatalog
	if json.Unmarshal(b, &lc) != nil || !maps.Equal(lc.Context, context) {
		return nil, false
	}
	doc, _, _, err := syftjson.NewFormatDecoder().Decode(bytes.NewReader(lc.Document))
	if err != nil {
		return nil, false
	}
	return doc, true
}

// storeLayer keeps a fresh catalog. Lookups go through the paths the
// layer's first catalog read (layerContextKey), so the catalog is stored
// under their resolution in this image when it read no others; else only
// under its own reads, where a lookup does not find it, which is safe. A
// failure only costs a later scan time.
func storeLayer(ctx context.Context, c scanner.Cache, diffID string, doc *syftsbom.SBOM, context map[string]string, final *finalView) {
	var buf bytes.Buffer
	if err := syftjson.NewFormatEncoder().Encode(&buf, *doc); err != nil {
		return
	}
	put := func(context map[string]string) {
		if b, err := json.Marshal(layerCatalog{Document: buf.Bytes(), Context: context}); err == nil {
			_ = c.Put(ctx, layerCatalogKey(diffID, context), b)
		}
	}
	paths := slices.Sorted(maps.Keys(context))
	prev, ok, err := c.Get(ctx, layerContextKey(diffID))
	if err != nil {
		return
	}
	var first []string
	if !ok || json.Unmarshal(prev, &first) != nil {
		if pb, err := json.Marshal(paths); err == nil {
			_ = c.Put(ctx, layerContextKey(diffID), pb)
		}
		put(context)
		return
	}
	if !isSubset(paths, first) {
		put(context)
		return
	}
	// This catalog depends on fewer paths than the first read: it holds
	// wherever those resolve as they do here.
	wide := make(map[string]string, len(first))
	for _, p := range first {
		if o, read := context[p]; read {
			wide[p] = o
		} else {
			wide[p] = final.owner(p)
		}
	}
	put(wide)
}

func isSubset(small, big []string) bool {
	for _, s := range small {
		if !slices.Contains(big, s) {
			return false
		}
	}
	return true
}

// mergeLayers joins the layers' catalogs into the image's: a package stays
// if the final filesystem holds each of its primary evidence files from
// the layer it was found in.
func mergeLayers(docs []*syftsbom.SBOM, final *finalView) (*syftsbom.SBOM, error) {
	out := &syftsbom.SBOM{Artifacts: syftsbom.Artifacts{
		Packages:     pkg.NewCollection(),
		FileMetadata: map[file.Coordinates]file.Metadata{},
		FileDigests:  map[file.Coordinates][]file.Digest{},
		FileContents: map[file.Coordinates]string{},
		FileLicenses: map[file.Coordinates][]file.License{},
		Executables:  map[file.Coordinates]file.Executable{},
		Unknowns:     map[file.Coordinates][]string{},
	}}
	type found struct {
		p     pkg.Package
		layer int
	}
	var kept []found
	for i, doc := range docs {
		if doc == nil || doc.Artifacts.Packages == nil {
			continue
		}
		for _, p := range doc.Artifacts.Packages.Sorted() {
			if visible(p, final) {
				kept = append(kept, found{p, i})
			}
		}
	}
	// syft drops binary packages whose files an OS package owns. Within a
	// layer its own run did that; across layers it cannot be done here
	// faithfully, so such an image is cataloged whole.
	owned := map[string]int{}
	for _, f := range kept {
		if o, ok := f.p.Metadata.(pkg.FileOwner); ok && isOSPackage(f.p.Type) {
			for _, path := range o.OwnedFiles() {
				owned[path] = f.layer
			}
		}
	}
	for _, f := range kept {
		if f.p.Type != pkg.BinaryPkg && f.p.Type != pkg.BitnamiPkg {
			continue
		}
		for _, l := range f.p.Locations.ToSlice() {
			if layer, ok := owned[l.RealPath]; ok && layer != f.layer {
				return nil, errLayeredFallback
			}
		}
	}

	ids := map[artifact.ID]bool{}
	for _, f := range kept {
		out.Artifacts.Packages.Add(f.p)
		ids[f.p.ID()] = true
	}
	for _, doc := range docs {
		if doc == nil {
			continue
		}
		a := doc.Artifacts
		maps.Copy(out.Artifacts.FileMetadata, a.FileMetadata)
		maps.Copy(out.Artifacts.FileDigests, a.FileDigests)
		maps.Copy(out.Artifacts.FileContents, a.FileContents)
		maps.Copy(out.Artifacts.FileLicenses, a.FileLicenses)
		maps.Copy(out.Artifacts.Executables, a.Executables)
		maps.Copy(out.Artifacts.Unknowns, a.Unknowns)
		for _, r := range doc.Relationships {
			if keepEnd(r.From, ids) && keepEnd(r.To, ids) {
				out.Relationships = append(out.Relationships, r)
			}
		}
	}
	// The distro is the final filesystem's: the top layer's run read
	// /etc/os-release (its own, or the image's below it).
	for i := len(docs) - 1; i >= 0; i-- {
		if docs[i] != nil && docs[i].Artifacts.LinuxDistribution != nil {
			out.Artifacts.LinuxDistribution = docs[i].Artifacts.LinuxDistribution
			break
		}
	}
	return out, nil
}

// keepEnd reports whether a relationship's end is a kept package or not a
// package at all (a file).
func keepEnd(end artifact.Identifiable, ids map[artifact.ID]bool) bool {
	if _, isPkg := end.(pkg.Package); isPkg {
		return ids[end.ID()]
	}
	if p, isPkg := end.(*pkg.Package); isPkg {
		return ids[p.ID()]
	}
	return true
}

func isOSPackage(t pkg.Type) bool {
	switch t {
	case pkg.AlpmPkg, pkg.ApkPkg, pkg.DebPkg, pkg.NixPkg, pkg.PortagePkg, pkg.RpmPkg:
		return true
	}
	return false
}

// visible reports whether the final filesystem still holds p's primary
// evidence from the layers it was found in.
func visible(p pkg.Package, final *finalView) bool {
	locs := p.Locations.ToSlice()
	var primary []file.Location
	for _, l := range locs {
		if l.Annotations[pkg.EvidenceAnnotationKey] == pkg.PrimaryEvidenceAnnotation {
			primary = append(primary, l)
		}
	}
	if len(primary) == 0 {
		primary = locs
	}
	for _, l := range primary {
		if final.owner(l.RealPath) != l.FileSystemID {
			return false
		}
	}
	return len(primary) > 0
}

// finalView answers which layer holds a path in the image's final
// filesystem.
type finalView struct {
	squash file.Resolver

	mu   sync.Mutex
	seen map[string]string
}

// owner is the diff ID of the layer the final filesystem takes path from,
// "" if it has no such file.
func (f *finalView) owner(path string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if o, ok := f.seen[path]; ok {
		return o
	}
	var o string
	if locs, err := f.squash.FilesByPath(path); err == nil && len(locs) > 0 {
		o = locs[0].FileSystemID
	}
	f.seen[path] = o
	return o
}

// layerSource is the image source with the resolver of one layer.
type layerSource struct {
	source.Source
	resolver file.Resolver
}

func (s *layerSource) FileResolver(source.Scope) (file.Resolver, error) { return s.resolver, nil }

// Close leaves the image to its owner: every layer's source shares it.
func (s *layerSource) Close() error { return nil }

// layerResolver is what syft's catalogers see while one layer is
// cataloged: discovery (globs, MIME types, all locations) finds only the
// layer's own files; a path asked for by name is the layer's own file if
// it has one, else the image's final file, and is then recorded as
// context.
type layerResolver struct {
	layer string // diff ID
	all   file.Resolver
	final *finalView

	mu      sync.Mutex
	context map[string]string
}

var _ file.Resolver = (*layerResolver)(nil)

func (r *layerResolver) own(locs []file.Location) []file.Location {
	out := locs[:0:0]
	for _, l := range locs {
		if l.FileSystemID == r.layer {
			out = append(out, l)
		}
	}
	return out
}

func (r *layerResolver) record(path string) {
	o := r.final.owner(path)
	r.mu.Lock()
	r.context[path] = o
	r.mu.Unlock()
}

func (r *layerResolver) recorded() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.context)
}

func (r *layerResolver) FileContentsByLocation(l file.Location) (io.ReadCloser, error) {
	return r.all.FileContentsByLocation(l)
}

func (r *layerResolver) FileMetadataByLocation(l file.Location) (file.Metadata, error) {
	return r.all.FileMetadataByLocation(l)
}

func (r *layerResolver) HasPath(path string) bool {
	if locs, err := r.all.FilesByPath(path); err == nil && len(r.own(locs)) > 0 {
		return true
	}
	r.record(path)
	return r.final.squash.HasPath(path)
}

func (r *layerResolver) FilesByPath(paths ...string) ([]file.Location, error) {
	var out []file.Location
	for _, p := range paths {
		locs, err := r.all.FilesByPath(p)
		if err != nil {
			return nil, err
		}
		if own := r.own(locs); len(own) > 0 {
			out = append(out, own...)
			continue
		}
		r.record(p)
		locs, err = r.final.squash.FilesByPath(p)
		if err != nil {
			return nil, err
		}
		out = append(out, locs...)
	}
	return out, nil
}

func (r *layerResolver) FilesByGlob(patterns ...string) ([]file.Location, error) {
	locs, err := r.all.FilesByGlob(patterns...)
	return r.own(locs), err
}

func (r *layerResolver) FilesByMIMEType(types ...string) ([]file.Location, error) {
	locs, err := r.all.FilesByMIMEType(types...)
	return r.own(locs), err
}

func (r *layerResolver) RelativeFileByPath(from file.Location, path string) *file.Location {
	locs, err := r.FilesByPath(path)
	if err != nil || len(locs) == 0 {
		return nil
	}
	return &locs[0]
}

func (r *layerResolver) AllLocations(ctx context.Context) <-chan file.Location {
	out := make(chan file.Location)
	go func() {
		defer close(out)
		for l := range r.all.AllLocations(ctx) {
			if l.FileSystemID != r.layer {
				continue
			}
			select {
			case out <- l:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}
