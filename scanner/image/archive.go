package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/vigil-sec/vigil/scanner"
)

// maxMetadataSize bounds what is read whole from an archive: index.json,
// manifests and configs. Layers are streamed.
const maxMetadataSize = 8 << 20

// resolveArchive reads a `docker save` tarball or a tarball of an OCI
// image layout, plain or gzipped. An OCI layout is read in place: each blob
// is a section of the file (or, gzipped, found by decompressing up to it),
// so nothing is extracted and nothing needs cleaning up. When a tarball
// holds both, as `docker save` does since Docker 25, the OCI layout wins: it
// keeps the registry's manifest digest.
func resolveArchive(file string, want *v1.Platform) (v1.Image, v1.Hash, error) {
	ref := ArchivePrefix + file
	if file == "" {
		return nil, v1.Hash{}, fmt.Errorf("%w: %q names no file", scanner.ErrUsage, ref)
	}
	fi, err := os.Stat(file)
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("%w: image archive %q: %v", scanner.ErrUsage, file, err)
	}
	if fi.IsDir() {
		return nil, v1.Hash{}, fmt.Errorf("%w: image archive %q is a directory (use %s for an OCI layout)", scanner.ErrUsage, file, OCIPrefix)
	}
	a, err := openArchive(file)
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("%w: image archive %q is not a tar file: %v", scanner.ErrUsage, file, err)
	}

	switch {
	case a.has("oci-layout") && a.has("index.json"):
		raw, err := a.bytes("index.json")
		if err != nil {
			return nil, v1.Hash{}, fmt.Errorf("%w: image archive %q: %v", scanner.ErrUsage, file, err)
		}
		idx := &archiveIndex{a: a, mediaType: types.OCIImageIndex, raw: raw}
		if _, err := idx.IndexManifest(); err != nil {
			return nil, v1.Hash{}, fmt.Errorf("%w: image archive %q: bad index.json: %v", scanner.ErrUsage, file, err)
		}
		return pick(idx, want, ref)

	case a.has("manifest.json"):
		img, err := tarball.Image(a.stream, nil)
		if err != nil {
			return nil, v1.Hash{}, fmt.Errorf("%w: image archive %q: %v", scanner.ErrUsage, file, err)
		}
		if err := checkPlatform(img, want, ref); err != nil {
			return nil, v1.Hash{}, err
		}
		// A docker save tarball has no manifest: ggcr makes one, hashing
		// each layer as it streams past.
		digest, err := img.Digest()
		if err != nil {
			return nil, v1.Hash{}, fmt.Errorf("image archive %q: %w", file, err)
		}
		return img, digest, nil

	default:
		return nil, v1.Hash{}, fmt.Errorf("%w: image archive %q holds neither an OCI image layout (oci-layout, index.json) nor a docker save manifest.json",
			scanner.ErrUsage, file)
	}
}

// archive is a tar file, plain or gzipped, indexed by entry name.
type archive struct {
	path    string
	gzipped bool
	entries map[string]tarEntry
}

// tarEntry locates a regular file in a plain tar; offsets mean nothing in
// a gzipped one.
type tarEntry struct {
	offset, size int64
}

func openArchive(file string) (*archive, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()

	a := &archive{path: file, entries: map[string]tarEntry{}}
	magic := make([]byte, 2)
	if _, err := io.ReadFull(f, magic); err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	var r io.Reader = f
	if bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		a.gzipped = true
		zr, err := gzip.NewReader(bufio.NewReader(f))
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	}
	// On a plain tar the reader skips file data by seeking, and after Next
	// the file offset is where the entry's data starts.
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if !h.FileInfo().Mode().IsRegular() {
			continue
		}
		e := tarEntry{size: h.Size}
		if !a.gzipped {
			if e.offset, err = f.Seek(0, io.SeekCurrent); err != nil {
				return nil, err
			}
		}
		a.entries[cleanName(h.Name)] = e
	}
	if len(a.entries) == 0 {
		return nil, errors.New("no files in it")
	}
	return a, nil
}

func cleanName(n string) string {
	return strings.TrimPrefix(path.Clean("/"+n), "/")
}

func (a *archive) has(name string) bool {
	_, ok := a.entries[name]
	return ok
}

// open streams one entry.
func (a *archive) open(name string) (io.ReadCloser, error) {
	e, ok := a.entries[name]
	if !ok {
		return nil, fmt.Errorf("%s: no %s in the archive", a.path, name)
	}
	f, err := os.Open(a.path)
	if err != nil {
		return nil, err
	}
	if !a.gzipped {
		return readCloser{io.NewSectionReader(f, e.offset, e.size), f}, nil
	}
	zr, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		f.Close()
		return nil, err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			f.Close()
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("%s: no %s in the archive", a.path, name)
			}
			return nil, err
		}
		if cleanName(h.Name) == name && h.FileInfo().Mode().IsRegular() {
			return readCloser{tr, f}, nil
		}
	}
}

// stream opens the whole tar, decompressed, for ggcr's tarball package.
func (a *archive) stream() (io.ReadCloser, error) {
	f, err := os.Open(a.path)
	if err != nil {
		return nil, err
	}
	if !a.gzipped {
		return f, nil
	}
	zr, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		f.Close()
		return nil, err
	}
	return readCloser{zr, f}, nil
}

// bytes reads a small entry whole.
func (a *archive) bytes(name string) ([]byte, error) {
	if e := a.entries[name]; e.size > maxMetadataSize {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d allowed", name, e.size, maxMetadataSize)
	}
	rc, err := a.open(name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, maxMetadataSize))
}

func blobName(h v1.Hash) string { return path.Join("blobs", h.Algorithm, h.Hex) }

type readCloser struct {
	io.Reader
	io.Closer
}

// archiveIndex is an index in an OCI layout tarball, like ggcr's
// layout.layoutIndex but reading blobs from the archive.
type archiveIndex struct {
	a         *archive
	mediaType types.MediaType
	raw       []byte
}

var _ v1.ImageIndex = (*archiveIndex)(nil)

func (i *archiveIndex) MediaType() (types.MediaType, error) { return i.mediaType, nil }
func (i *archiveIndex) Digest() (v1.Hash, error)            { return partial.Digest(i) }
func (i *archiveIndex) Size() (int64, error)                { return partial.Size(i) }
func (i *archiveIndex) RawManifest() ([]byte, error)        { return i.raw, nil }

func (i *archiveIndex) IndexManifest() (*v1.IndexManifest, error) {
	var m v1.IndexManifest
	if err := json.Unmarshal(i.raw, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

func (i *archiveIndex) find(h v1.Hash) (v1.Descriptor, error) {
	m, err := i.IndexManifest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	for _, d := range m.Manifests {
		if d.Digest == h {
			return d, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("no %s in the index", h)
}

func (i *archiveIndex) Image(h v1.Hash) (v1.Image, error) {
	d, err := i.find(h)
	if err != nil {
		return nil, err
	}
	if !d.MediaType.IsImage() {
		return nil, fmt.Errorf("%s is a %s, not an image", h, d.MediaType)
	}
	return partial.CompressedToImage(&archiveImage{a: i.a, desc: d})
}

func (i *archiveIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	d, err := i.find(h)
	if err != nil {
		return nil, err
	}
	if !d.MediaType.IsIndex() {
		return nil, fmt.Errorf("%s is a %s, not an index", h, d.MediaType)
	}
	raw, err := i.a.bytes(blobName(h))
	if err != nil {
		return nil, err
	}
	return &archiveIndex{a: i.a, mediaType: d.MediaType, raw: raw}, nil
}

// archiveImage is an image in an OCI layout tarball.
type archiveImage struct {
	a    *archive
	desc v1.Descriptor

	mu  sync.Mutex
	raw []byte // the manifest, once read
}

var _ partial.CompressedImageCore = (*archiveImage)(nil)

func (m *archiveImage) MediaType() (types.MediaType, error) { return m.desc.MediaType, nil }

func (m *archiveImage) RawManifest() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.raw != nil {
		return m.raw, nil
	}
	b, err := m.a.bytes(blobName(m.desc.Digest))
	if err != nil {
		return nil, err
	}
	m.raw = b
	return b, nil
}

func (m *archiveImage) manifest() (*v1.Manifest, error) {
	raw, err := m.RawManifest()
	if err != nil {
		return nil, err
	}
	return v1.ParseManifest(bytes.NewReader(raw))
}

func (m *archiveImage) RawConfigFile() ([]byte, error) {
	mf, err := m.manifest()
	if err != nil {
		return nil, err
	}
	return m.a.bytes(blobName(mf.Config.Digest))
}

func (m *archiveImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	mf, err := m.manifest()
	if err != nil {
		return nil, err
	}
	if h == mf.Config.Digest {
		return &archiveBlob{a: m.a, desc: mf.Config}, nil
	}
	for _, d := range mf.Layers {
		if d.Digest == h {
			return &archiveBlob{a: m.a, desc: d}, nil
		}
	}
	return nil, fmt.Errorf("no layer %s in image %s", h, m.desc.Digest)
}

// archiveBlob is a layer (or the config) of an image in an OCI layout
// tarball.
type archiveBlob struct {
	a    *archive
	desc v1.Descriptor
}

func (b *archiveBlob) Digest() (v1.Hash, error)            { return b.desc.Digest, nil }
func (b *archiveBlob) Size() (int64, error)                { return b.desc.Size, nil }
func (b *archiveBlob) MediaType() (types.MediaType, error) { return b.desc.MediaType, nil }
func (b *archiveBlob) Descriptor() (*v1.Descriptor, error) { return &b.desc, nil }
func (b *archiveBlob) Compressed() (io.ReadCloser, error)  { return b.a.open(blobName(b.desc.Digest)) }
