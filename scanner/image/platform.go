package image

import (
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/vigil-sec/vigil/scanner"
)

// DefaultPlatform is the platform Resolve picks from an index when
// Options.Platform is empty. It is fixed rather than the host's so that a
// scan of the same reference finds the same image on every machine.
const DefaultPlatform = "linux/amd64"

// maxIndexDepth bounds how deep indexes may nest, so that a malicious
// registry cannot send Resolve round in circles.
const maxIndexDepth = 8

func parsePlatform(s string) (*v1.Platform, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	p, err := v1.ParsePlatform(s)
	if err != nil || p.OS == "" || p.Architecture == "" {
		return nil, fmt.Errorf("%w: bad platform %q: want os/arch[/variant], such as linux/arm64", scanner.ErrUsage, s)
	}
	return p, nil
}

// candidate is one image manifest listed in an index or a nested index.
type candidate struct {
	digest   v1.Hash
	platform *v1.Platform // as the index says; nil when it does not
	open     func() (v1.Image, error)
}

// pick chooses the image of the wanted platform (nil: DefaultPlatform)
// among those idx lists. An index of a single image without a wanted
// platform gives that image, whatever its platform. Among several matches
// the first in index order wins, as with docker pull.
func pick(idx v1.ImageIndex, want *v1.Platform, ref string) (v1.Image, v1.Hash, error) {
	cands, err := collect(idx, 0, map[v1.Hash]bool{}, nil)
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("reading index of %s: %w", ref, err)
	}
	if len(cands) == 0 {
		return nil, v1.Hash{}, fmt.Errorf("%w: %s holds no image", scanner.ErrUsage, ref)
	}
	if len(cands) == 1 && want == nil {
		img, err := cands[0].open()
		if err != nil {
			return nil, v1.Hash{}, fmt.Errorf("reading image %s: %w", ref, err)
		}
		return img, cands[0].digest, nil
	}

	spec := want
	if spec == nil {
		spec, _ = v1.ParsePlatform(DefaultPlatform)
	}
	var have []string
	for _, c := range cands {
		p := c.platform
		if p == nil || p.OS == "" {
			// The index does not say: ask the image's config.
			img, err := c.open()
			if err != nil {
				return nil, v1.Hash{}, fmt.Errorf("reading image %s@%s: %w", ref, c.digest, err)
			}
			cfg, err := img.ConfigFile()
			if err != nil {
				return nil, v1.Hash{}, fmt.Errorf("reading config of %s@%s: %w", ref, c.digest, err)
			}
			if p = cfg.Platform(); p == nil {
				p = &v1.Platform{}
			}
		}
		if matches(*p, *spec) {
			img, err := c.open()
			if err != nil {
				return nil, v1.Hash{}, fmt.Errorf("reading image %s@%s: %w", ref, c.digest, err)
			}
			return img, c.digest, nil
		}
		have = append(have, p.String())
	}
	return nil, v1.Hash{}, fmt.Errorf("%w: %s has no image for platform %s (it has %s)",
		scanner.ErrUsage, ref, spec, strings.Join(have, ", "))
}

func collect(idx v1.ImageIndex, depth int, seen map[v1.Hash]bool, out []candidate) ([]candidate, error) {
	if depth > maxIndexDepth {
		return nil, fmt.Errorf("indexes nested more than %d deep", maxIndexDepth)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range im.Manifests {
		switch {
		case seen[d.Digest]:
		case d.MediaType.IsIndex():
			seen[d.Digest] = true
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, err
			}
			if out, err = collect(child, depth+1, seen, out); err != nil {
				return nil, err
			}
		case d.MediaType.IsImage() && !isAttestation(d):
			seen[d.Digest] = true
			out = append(out, candidate{
				digest:   d.Digest,
				platform: d.Platform,
				open:     func() (v1.Image, error) { return idx.Image(d.Digest) },
			})
		}
	}
	return out, nil
}

// isAttestation reports whether an index entry holds build attestations
// (buildx marks them with the unknown/unknown platform) or an OCI 1.1
// artifact (an SBOM or a signature attached to an image, its artifactType
// other than an image config's) rather than an image.
func isAttestation(d v1.Descriptor) bool {
	if d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
		return true
	}
	switch d.ArtifactType {
	case "", string(types.OCIConfigJSON), string(types.DockerConfigJSON):
	default:
		return true
	}
	return d.Platform != nil && d.Platform.OS == "unknown" && d.Platform.Architecture == "unknown"
}

// matches reports whether an image of platform have satisfies spec; arm64
// without a variant is arm64/v8.
func matches(have, spec v1.Platform) bool {
	if have.Architecture == "arm64" && have.Variant == "" {
		have.Variant = "v8"
	}
	return have.Satisfies(spec)
}

// checkPlatform verifies that a single image matches the wanted platform.
func checkPlatform(img v1.Image, want *v1.Platform, ref string) error {
	if want == nil {
		return nil
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("reading config of %s: %w", ref, err)
	}
	p := cfg.Platform()
	if p == nil {
		p = &v1.Platform{}
	}
	if !matches(*p, *want) {
		return fmt.Errorf("%w: image %s is %s, not %s", scanner.ErrUsage, ref, p, want)
	}
	return nil
}
