// Package imagebuild builds Vigil's container image without a container
// engine: go-containerregistry assembles an OCI image from three layers
// (Debian's git and CA certificates, a Go toolchain for the SAST engine,
// the vigil binary) and writes it as an OCI layout and a tarball. It also
// attaches an SBOM to an image of a layout as an OCI 1.1 referrer. `make
// image` runs it through tools/mkimage.
package imagebuild

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's user: not root, as distroless images have it.
const (
	UID  = 65532
	User = "nonroot"
	Home = "/home/nonroot"
)

// Options say what goes into the image.
type Options struct {
	Binary   string    // the vigil binary (static: CGO_ENABLED=0)
	GoRoot   string    // a Go toolchain copied to /usr/local/go; "" leaves it out (no SAST of Go source)
	Debian   []Package // packages for the base layer (ResolveDebian, FetchDebian); none: no git
	Version  string    // Vigil's version, for the labels
	Source   string    // the source repository's address, for the labels
	Revision string    // the commit it was built from, for the labels
	Created  time.Time // every file's time and the image's creation time (SOURCE_DATE_EPOCH)
	WorkDir  string    // a directory the caller owns and removes after Write: the layers' files are read from it until then
}

// Build assembles the image. The same options give the same digest.
func Build(ctx context.Context, o Options) (v1.Image, error) {
	if o.Binary == "" {
		return nil, errors.New("imagebuild: no vigil binary given")
	}
	if _, err := os.Stat(o.Binary); err != nil {
		return nil, fmt.Errorf("imagebuild: the vigil binary: %w", err)
	}
	if o.WorkDir == "" {
		return nil, errors.New("imagebuild: no work directory given")
	}
	if err := os.MkdirAll(o.WorkDir, 0o755); err != nil {
		return nil, err
	}
	built := &layers{dir: o.WorkDir}

	base := tree{}
	if len(o.Debian) > 0 {
		if err := base.addDebian(ctx, o.Debian); err != nil {
			return nil, err
		}
	}
	base.addSystem()
	if err := built.add("base", base, o.Created); err != nil {
		return nil, err
	}

	if o.GoRoot != "" {
		goTree := tree{}
		if err := goTree.addDir(o.GoRoot, "usr/local/go", skipGoRoot); err != nil {
			return nil, fmt.Errorf("imagebuild: the Go toolchain: %w", err)
		}
		if err := built.add("go", goTree, o.Created); err != nil {
			return nil, err
		}
	}

	app := tree{}
	app.add(entry{Name: "usr/local/bin/vigil", Mode: 0o755, Src: o.Binary})
	if err := built.add("vigil", app, o.Created); err != nil {
		return nil, err
	}

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(img, built.list...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Created = v1.Time{Time: o.Created.UTC()}
	cf.Config = v1.Config{
		User:       fmt.Sprintf("%d:%d", UID, UID),
		WorkingDir: "/work",
		Entrypoint: []string{"/usr/local/bin/vigil"},
		Cmd:        []string{"--help"},
		Env: []string{
			"PATH=/usr/local/bin:/usr/local/go/bin:/usr/bin:/bin",
			"HOME=" + Home,
			"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
			"GOTOOLCHAIN=local", // scans use the toolchain inside, never download one
		},
		Labels: map[string]string{
			"org.opencontainers.image.title":       "vigil",
			"org.opencontainers.image.description": "Vigil: SAST, SBOMs and the gate for every commit and image",
			"org.opencontainers.image.version":     o.Version,
			"org.opencontainers.image.source":      o.Source,
			"org.opencontainers.image.revision":    o.Revision,
			"org.opencontainers.image.created":     o.Created.UTC().Format(time.RFC3339),
		},
	}
	if runtimeArch(o.Binary) != "" {
		cf.Architecture = runtimeArch(o.Binary)
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	return img, nil
}

// skipGoRoot leaves out of the toolchain what a build never reads.
func skipGoRoot(rel string) bool {
	switch strings.SplitN(rel, "/", 2)[0] {
	case "test", "api", "doc", "misc", ".git":
		return true
	}
	return strings.HasPrefix(rel, "src/") &&
		(strings.HasSuffix(rel, "_test.go") || strings.HasSuffix(rel, "/testdata") || strings.Contains(rel, "/testdata/"))
}

// addSystem writes what a Debian install would have: the users, a home
// and work directory the image's user owns, /tmp.
func (t tree) addSystem() {
	t.add(entry{Name: "etc/passwd", Mode: 0o644, Data: []byte(fmt.Sprintf(
		"root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:%s:/sbin/nologin\n", User, UID, UID, User, Home))})
	t.add(entry{Name: "etc/group", Mode: 0o644, Data: []byte(fmt.Sprintf("root:x:0:\n%s:x:%d:\n", User, UID))})
	t.add(entry{Name: "etc/nsswitch.conf", Mode: 0o644, Data: []byte("hosts: files dns\n")})
	t.add(entry{Name: "root", Mode: 0o700, Dir: true})
	for _, mount := range []string{"dev", "proc", "sys"} { // where a runtime mounts them
		t.add(entry{Name: mount, Mode: 0o755, Dir: true})
	}
	t.add(entry{Name: "tmp", Mode: 0o777 | os.ModeSticky, Dir: true})
	t.add(entry{Name: Home[1:], Mode: 0o755, UID: UID, GID: UID, Dir: true})
	t.add(entry{Name: "work", Mode: 0o755, UID: UID, GID: UID, Dir: true})
}

// layers writes each tree to a gzipped tar file and keeps them as layers.
type layers struct {
	dir  string
	list []v1.Layer
}

func (l *layers) add(name string, t tree, mtime time.Time) error {
	p := filepath.Join(l.dir, name+".tar.gz")
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	if err := t.writeLayer(f, mtime); err != nil {
		f.Close()
		return fmt.Errorf("imagebuild: layer %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	layer, err := tarball.LayerFromFile(p, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return err
	}
	l.list = append(l.list, layer)
	return nil
}

// runtimeArch is the binary's GOARCH as its ELF header says, or "".
func runtimeArch(bin string) string {
	f, err := os.Open(bin)
	if err != nil {
		return ""
	}
	defer f.Close()
	head := make([]byte, 20)
	if _, err := io.ReadFull(f, head); err != nil || string(head[:4]) != "\x7fELF" {
		return ""
	}
	switch uint16(head[18]) | uint16(head[19])<<8 {
	case 62:
		return "amd64"
	case 183:
		return "arm64"
	}
	return ""
}

// Write writes img as an OCI layout at dir (made anew) tagged ref, and as
// a tarball (docker save's format, which `vigil scan archive:` and
// `docker load` read) at tarPath when it is not "".
func Write(img v1.Image, ref, dir, tarPath string) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("imagebuild: image name %q: %w", ref, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": tag.TagStr(),
		"io.containerd.image.name":          tag.Name(),
	})); err != nil {
		return err
	}
	if tarPath != "" {
		if err := tarball.WriteToFile(tarPath, tag, img); err != nil {
			return err
		}
	}
	return nil
}

// SBOMMediaTypes are the artifact types AttachSBOM knows, by the format
// names `vigil scan -o` uses.
var SBOMMediaTypes = map[string]string{
	"cyclonedx-json": "application/vnd.cyclonedx+json",
	"spdx-json":      "application/spdx+json",
}

// AttachSBOM stores the SBOM file in the OCI layout at dir as an OCI 1.1
// artifact whose subject is the layout's image (the only one it holds), as
// `oras attach` or `cosign attach sbom` would push it to a registry: a
// manifest with artifactType, an empty config and the SBOM as its layer.
// It returns the artifact manifest's digest.
func AttachSBOM(dir, sbomPath, mediaType string) (v1.Hash, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("imagebuild: %s is not an OCI layout: %w", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return v1.Hash{}, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return v1.Hash{}, err
	}
	var subject *v1.Descriptor
	for i, d := range im.Manifests {
		if d.MediaType.IsImage() && IsImageArtifactType(d.ArtifactType) {
			if subject != nil {
				return v1.Hash{}, fmt.Errorf("imagebuild: %s holds more than one image: attach to which?", dir)
			}
			subject = &im.Manifests[i]
		}
	}
	if subject == nil {
		return v1.Hash{}, fmt.Errorf("imagebuild: %s holds no image", dir)
	}
	sbom, err := os.ReadFile(sbomPath)
	if err != nil {
		return v1.Hash{}, err
	}
	if !json.Valid(sbom) {
		return v1.Hash{}, fmt.Errorf("imagebuild: %s is not JSON", sbomPath)
	}

	emptyConfig := []byte("{}")
	configDesc, err := writeBlob(p, "application/vnd.oci.empty.v1+json", emptyConfig)
	if err != nil {
		return v1.Hash{}, err
	}
	layerDesc, err := writeBlob(p, types.MediaType(mediaType), sbom)
	if err != nil {
		return v1.Hash{}, err
	}
	layerDesc.Annotations = map[string]string{"org.opencontainers.image.title": filepath.Base(sbomPath)}
	sub := v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	manifest := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  mediaType,
		Config:        configDesc,
		Layers:        []v1.Descriptor{layerDesc},
		Subject:       &sub,
	}
	raw, err := json.Marshal(manifest)
	if err != nil {
		return v1.Hash{}, err
	}
	desc, err := writeBlob(p, types.OCIManifestSchema1, raw)
	if err != nil {
		return v1.Hash{}, err
	}
	desc.ArtifactType = mediaType
	if err := p.AppendDescriptor(desc); err != nil {
		return v1.Hash{}, err
	}
	return desc.Digest, nil
}

// IsImageArtifactType reports whether an index entry's artifactType is
// that of a runnable image: none, or its config's media type (which
// go-containerregistry writes there), as opposed to an OCI 1.1 artifact
// such as an attached SBOM or signature.
func IsImageArtifactType(at string) bool {
	return at == "" || at == string(types.OCIConfigJSON) || at == string(types.DockerConfigJSON)
}

func writeBlob(p layout.Path, mt types.MediaType, data []byte) (v1.Descriptor, error) {
	sum := sha256.Sum256(data)
	h := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	if err := p.WriteBlob(h, io.NopCloser(strings.NewReader(string(data)))); err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mt, Digest: h, Size: int64(len(data))}, nil
}
