package sbom

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/anchore/stereoscope/pkg/file"
	"github.com/anchore/stereoscope/pkg/image"
	"github.com/anchore/syft/syft"
	"github.com/anchore/syft/syft/source"
	"github.com/anchore/syft/syft/source/directorysource"
	"github.com/anchore/syft/syft/source/stereoscopesource"
	"github.com/google/go-containerregistry/pkg/name"
	// syft reads newer RPM databases (RHEL 9, Fedora) through
	// database/sql and needs a registered "sqlite" driver.
	_ "modernc.org/sqlite"

	"github.com/vigil-sec/vigil/internal/version"
	"github.com/vigil-sec/vigil/scanner"
)

// ID is the engine's ID in the registry and in --engines.
const ID = "sbom"

const (
	syftModule = "github.com/anchore/syft"
	// fallbackSyftVersion is reported when the binary carries no build
	// info; keep it in step with go.mod.
	fallbackSyftVersion = "v1.57.1"
)

// Config tunes the engine. A nil *Config means DefaultConfig().
type Config struct {
	// Logger receives the engine's debug messages; nil discards them.
	Logger *slog.Logger
	// Progress, when set, is told each stage ("reading image layers",
	// "cataloging packages", …). It may be called from any goroutine.
	Progress func(msg string)
}

// DefaultConfig returns the default configuration: no logging, no progress.
func DefaultConfig() *Config {
	return &Config{Logger: slog.New(slog.DiscardHandler)}
}

func (c *Config) withDefaults() *Config {
	out := DefaultConfig()
	if c != nil {
		if c.Logger != nil {
			out.Logger = c.Logger
		}
		out.Progress = c.Progress
	}
	return out
}

func (c *Config) progress(msg string) {
	c.Logger.Debug(msg, "engine", ID)
	if c.Progress != nil {
		c.Progress(msg)
	}
}

// syftConfig names the engine's only configuration, syft's default
// catalogers and scopes, in Engine.Config and the cache keys.
const syftConfig = "syft-default"

// Engine returns the "sbom" scan engine. Its Version is the version of the
// syft module it embeds.
func Engine(cfg *Config) scanner.Engine {
	return scanner.Engine{
		ID:      ID,
		Version: SyftVersion(),
		Scans:   "directories, commits and images",
		Applies: func(t *scanner.Target) bool {
			switch t.Kind {
			case scanner.KindDir, scanner.KindGit, scanner.KindImage:
				return true
			}
			return false
		},
		Run: func(ctx context.Context, t *scanner.Target) (*scanner.Output, error) {
			s, err := Generate(ctx, t, cfg)
			if err != nil {
				return nil, err
			}
			return &scanner.Output{SBOM: s}, nil
		},
		Config: syftConfig,
		Codec:  codec,
	}
}

// SyftVersion is the version of the syft module built into this binary.
func SyftVersion() string { return version.Module(syftModule, fallbackSyftVersion) }

// Generate catalogs the target with syft's default catalogers for its
// kind of source. It returns when ctx is cancelled even if syft has not
// noticed yet; syft then finishes in the background and removes its
// temporary files.
func Generate(ctx context.Context, t *scanner.Target, cfg *Config) (*scanner.SBOM, error) {
	cfg = cfg.withDefaults()
	type result struct {
		s   *scanner.SBOM
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := generate(ctx, t, cfg)
		done <- result{s, err}
	}()
	select {
	case r := <-done:
		return r.s, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("cataloging %s: %w", t.Ref, ctx.Err())
	}
}

func generate(ctx context.Context, t *scanner.Target, cfg *Config) (*scanner.SBOM, error) {
	if c := scanner.CacheFrom(ctx); c != nil && t.Kind == scanner.KindImage && t.Image != nil {
		s, stats, err := generateLayered(ctx, c, t, cfg)
		if !errors.Is(err, errLayeredFallback) {
			return s, err
		}
		cfg.Logger.Debug("cataloging the image whole", "engine", ID, "target", t.Ref, "reason", err, "layers", stats.Layers)
		cfg.progress("cataloging the whole image: its layers cannot be cataloged one by one faithfully")
	}
	if c := scanner.CacheFrom(ctx); c != nil && t.Kind == scanner.KindGit && t.Path != "" {
		if s, ok, err := generateTree(ctx, c, t, cfg); ok {
			return s, err
		}
	}
	return catalog(ctx, t, cfg, nil)
}

// catalog catalogs the target with syft. read, when not nil, gives the
// source syft reads in place of the target's own (to record what it
// reads).
func catalog(ctx context.Context, t *scanner.Target, cfg *Config, read func(source.Source) (source.Source, error)) (*scanner.SBOM, error) {
	src, cleanup, err := newSource(ctx, t, cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := cleanup(); err != nil {
			cfg.Logger.Warn("removing temporary files", "engine", ID, "target", t.Ref, "error", err)
		}
	}()
	if read != nil {
		if src, err = read(src); err != nil {
			return nil, err
		}
	}

	cfg.progress("cataloging packages")
	// The default config is the syft CLI's: the same catalogers for this
	// kind of source, squashed scope for images. The tool version is set
	// here because syft reads it from build info, which test binaries lack.
	doc, err := syft.CreateSBOM(ctx, src, syft.DefaultCreateSBOMConfig().WithTool("syft", SyftVersion()))
	if err != nil {
		return nil, fmt.Errorf("cataloging %s: %w", t.Ref, err)
	}
	comps := components(doc, t.Kind == scanner.KindImage)
	cfg.progress(fmt.Sprintf("found %d packages", len(comps)))
	return &scanner.SBOM{Components: comps, Document: doc}, nil
}

// newSource makes the syft source for a target, and a func that releases
// what it holds.
func newSource(ctx context.Context, t *scanner.Target, cfg *Config) (source.Source, func() error, error) {
	switch t.Kind {
	case scanner.KindDir, scanner.KindGit:
		if t.Path == "" {
			return nil, nil, fmt.Errorf("%w: %s target %q has no directory", scanner.ErrUsage, t.Kind, t.Ref)
		}
		dir, err := filepath.Abs(t.Path)
		if err != nil {
			return nil, nil, err
		}
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return nil, nil, fmt.Errorf("%w: %q is not a directory", scanner.ErrUsage, t.Path)
		}
		// Base makes the paths in the SBOM relative to the directory, as
		// the syft CLI does.
		src, err := directorysource.New(directorysource.Config{Path: dir, Base: dir})
		if err != nil {
			return nil, nil, fmt.Errorf("reading directory %s: %w", t.Path, err)
		}
		closeSrc := func() error {
			if c, ok := src.(io.Closer); ok {
				return c.Close()
			}
			return nil
		}
		return src, closeSrc, nil

	case scanner.KindImage:
		return imageSource(ctx, t, cfg)
	}
	return nil, nil, fmt.Errorf("%w: the sbom engine cannot scan a %s target", scanner.ErrUsage, t.Kind)
}

// imageSource reads the resolved image with stereoscope: its layers stream
// from wherever scanner/image found them and are unpacked into a temporary
// directory.
func imageSource(ctx context.Context, t *scanner.Target, cfg *Config) (source.Source, func() error, error) {
	img, cleanup, err := readImage(ctx, t, cfg)
	if err != nil {
		return nil, nil, err
	}
	return imageSyftSource(img, t), cleanup, nil
}

// readImage reads the image of t with stereoscope, and returns a func that
// removes its temporary files.
func readImage(ctx context.Context, t *scanner.Target, cfg *Config) (*image.Image, func() error, error) {
	if t.Image == nil {
		return nil, nil, fmt.Errorf("%w: image target %q was not resolved", scanner.ErrUsage, t.Ref)
	}
	gen := file.NewTempDirGenerator("vigil-sbom")
	contentDir, err := gen.NewDirectory("image")
	if err != nil {
		return nil, nil, err
	}

	var meta []image.AdditionalMetadata
	if raw, err := t.Image.RawManifest(); err == nil {
		meta = append(meta, image.WithManifest(raw))
	}
	if t.Digest != "" {
		meta = append(meta, image.WithManifestDigest(t.Digest))
	}
	if r, ok := registryRef(t.Ref); ok {
		if _, isTag := r.(name.Tag); isTag {
			meta = append(meta, image.WithTags(r.Name()))
		}
		if t.Digest != "" {
			meta = append(meta, image.WithRepoDigests(r.Context().Name()+"@"+t.Digest))
		}
	}

	cfg.progress("reading image layers")
	img := image.New(t.Image, gen, contentDir, meta...)
	// Only the image squash is built up front, as the syft CLI does for a
	// squashed-scope scan: lower layers' squashes would cost memory for
	// nothing.
	if err := img.Read(image.WithLazyLayerSquashes(ctx)); err != nil {
		return nil, nil, errors.Join(fmt.Errorf("reading image %s: %w", t.Ref, err), img.Cleanup())
	}
	return img, img.Cleanup, nil
}

// imageSyftSource is syft's source for an image read by readImage.
func imageSyftSource(img *image.Image, t *scanner.Target) source.Source {
	return stereoscopesource.New(img, stereoscopesource.ImageConfig{Reference: t.Ref})
}

// registryRef parses a registry reference; oci: and archive: references
// are not.
func registryRef(ref string) (name.Reference, bool) {
	if strings.HasPrefix(ref, "oci:") || strings.HasPrefix(ref, "archive:") {
		return nil, false
	}
	r, err := name.ParseReference(ref)
	return r, err == nil
}
