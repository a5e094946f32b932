package image

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/vigil-sec/vigil/scanner"
)

// Prefixes of the references to images on disk.
const (
	OCIPrefix     = "oci:"     // "oci:DIR", an OCI image layout
	ArchivePrefix = "archive:" // "archive:FILE", a docker save or OCI layout tarball
)

// Options tune Resolve. The zero value is ready to use.
type Options struct {
	// Keychain finds registry credentials; nil means authn.DefaultKeychain
	// (the docker config, else anonymous).
	Keychain authn.Keychain
	// Insecure allows a registry served over plain HTTP. Loopback and
	// private addresses are always allowed plain HTTP.
	Insecure bool
	// Platform ("os/arch[/variant]") picks an image from an index; empty
	// means DefaultPlatform. When the reference is a single image, a
	// Platform that it does not match is a usage error.
	Platform string
	// Transport is the HTTP transport for registry requests; nil means
	// remote.DefaultTransport.
	Transport http.RoundTripper
	// Progress, when set, is told what Resolve is doing and, later, each
	// time a layer of the image starts streaming ("pulling layer 2/5 …").
	Progress func(msg string)
}

// Resolve turns ref into an image Target: a registry reference
// ("host/repo:tag", "host/repo@sha256:…"), "oci:DIR" or "archive:FILE".
// It reads manifests and the config only; layers stream when the image is
// read.
func Resolve(ctx context.Context, ref string, opts Options) (*scanner.Target, error) {
	if strings.TrimSpace(ref) == "" {
		return nil, fmt.Errorf("%w: empty image reference", scanner.ErrUsage)
	}
	want, err := parsePlatform(opts.Platform)
	if err != nil {
		return nil, err
	}

	var (
		img    v1.Image
		digest v1.Hash
		verb   = "reading"
	)
	switch {
	case strings.HasPrefix(ref, OCIPrefix):
		img, digest, err = resolveLayout(strings.TrimPrefix(ref, OCIPrefix), want)
	case strings.HasPrefix(ref, ArchivePrefix):
		img, digest, err = resolveArchive(strings.TrimPrefix(ref, ArchivePrefix), want)
	default:
		verb = "pulling"
		img, digest, err = resolveRemote(ctx, ref, want, opts)
	}
	if err != nil {
		return nil, err
	}

	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image %s: reading config: %w", ref, err)
	}
	t := &scanner.Target{
		Kind:   scanner.KindImage,
		Ref:    ref,
		Image:  img,
		Digest: digest.String(),
	}
	if p := cfg.Platform(); p != nil {
		t.Platform = p.String()
	}
	if opts.Progress != nil {
		opts.Progress(fmt.Sprintf("resolved %s to %s (%s)", ref, t.Digest, t.Platform))
		t.Image = withProgress(img, verb, opts.Progress)
	}
	return t, nil
}

// IsImageRef reports whether s names an image rather than a path: it has
// the "oci:" or "archive:" prefix, or it parses as a registry reference
// whose first component is a registry host (it holds a dot or a colon, or
// is "localhost"), as in "ghcr.io/org/app:1.2" or "localhost:5000/app".
// Docker Hub short names ("alpine:3") are not image references here:
// write "docker.io/library/alpine:3". A relative path whose first element
// holds a dot ("example.com/src") reads as an image, so callers should
// prefer an existing path.
func IsImageRef(s string) bool {
	if strings.HasPrefix(s, OCIPrefix) || strings.HasPrefix(s, ArchivePrefix) {
		return true
	}
	host, _, ok := strings.Cut(s, "/")
	if !ok || host == "" || host == "." || host == ".." || strings.HasPrefix(s, "./") || filepath.IsAbs(s) {
		return false
	}
	if !strings.ContainsAny(host, ".:") && host != "localhost" {
		return false
	}
	_, err := name.ParseReference(s)
	return err == nil
}

func resolveRemote(ctx context.Context, ref string, want *v1.Platform, opts Options) (v1.Image, v1.Hash, error) {
	var nameOpts []name.Option
	if opts.Insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	r, err := name.ParseReference(ref, nameOpts...)
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("%w: bad image reference %q: %v", scanner.ErrUsage, ref, err)
	}
	kc := opts.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc)}
	if opts.Transport != nil {
		ropts = append(ropts, remote.WithTransport(opts.Transport))
	}
	if opts.Progress != nil {
		opts.Progress("fetching manifest of " + r.Name())
	}
	desc, err := remote.Get(r, ropts...)
	if err != nil {
		if notFound(err) {
			return nil, v1.Hash{}, fmt.Errorf("%w: image %q not found in %s: %v", scanner.ErrUsage, ref, r.Context().RegistryStr(), err)
		}
		return nil, v1.Hash{}, fmt.Errorf("pulling image %q: %w", ref, err)
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, v1.Hash{}, fmt.Errorf("pulling image %q: %w", ref, err)
		}
		return pick(idx, want, ref)
	}
	img, err := desc.Image()
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("pulling image %q: %w", ref, err)
	}
	if err := checkPlatform(img, want, ref); err != nil {
		return nil, v1.Hash{}, err
	}
	return img, desc.Digest, nil
}

// notFound reports whether the registry said it has no such image, which
// is a mistake in the reference rather than a failed pull.
func notFound(err error) bool {
	var te *transport.Error
	if !errors.As(err, &te) {
		return false
	}
	if te.StatusCode == http.StatusNotFound {
		return true
	}
	for _, d := range te.Errors {
		if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
			return true
		}
	}
	return false
}

func resolveLayout(dir string, want *v1.Platform) (v1.Image, v1.Hash, error) {
	ref := OCIPrefix + dir
	if dir == "" {
		return nil, v1.Hash{}, fmt.Errorf("%w: %q names no directory", scanner.ErrUsage, ref)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("%w: OCI layout %q: %v", scanner.ErrUsage, dir, err)
	}
	if !fi.IsDir() {
		return nil, v1.Hash{}, fmt.Errorf("%w: OCI layout %q is not a directory (use %s for a tarball)", scanner.ErrUsage, dir, ArchivePrefix)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("%w: %q is not an OCI image layout: %v", scanner.ErrUsage, dir, err)
	}
	return pick(idx, want, ref)
}
