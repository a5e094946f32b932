package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
)

// Blobs stores immutable content (SARIF, SBOMs, results, report bundles)
// as files named by the SHA-256 of their content:
//
//	DIR/sha256/ab/abcdef…   the blob with key "sha256:abcdef…"
//	DIR/tmp/                files being written
//
// Equal content is stored once. A file appears under its name only once
// complete (written to tmp/, synced, renamed), so a reader never sees part
// of a blob, and a crash leaves at most a stray file in tmp/.
type Blobs struct {
	dir string
}

// keyRE is the only form of key Blobs accepts: nothing in it can name a
// path outside the store.
var keyRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// NewBlobs returns the blob store in dir, creating the directory if needed.
func NewBlobs(dir string) (*Blobs, error) {
	for _, d := range []string{dir, filepath.Join(dir, "sha256"), filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("store: blob directory: %w", err)
		}
	}
	return &Blobs{dir: dir}, nil
}

// ValidKey reports whether key has the form "sha256:<64 lowercase hex>".
func ValidKey(key string) bool { return keyRE.MatchString(key) }

func (b *Blobs) path(key string) (string, error) {
	if !ValidKey(key) {
		return "", fmt.Errorf("%w: blob key %q is not sha256:<64 lowercase hex>", ErrInvalid, key)
	}
	h := key[len("sha256:"):]
	return filepath.Join(b.dir, "sha256", h[:2], h), nil
}

// Put stores the content of r and returns its key ("sha256:<hex>") and
// size. Storing equal content again returns the same key and leaves the
// stored file as it is. Put stops early when ctx is cancelled.
func (b *Blobs) Put(ctx context.Context, r io.Reader) (key string, size int64, err error) {
	tmp, err := os.CreateTemp(filepath.Join(b.dir, "tmp"), "put-*")
	if err != nil {
		return "", 0, fmt.Errorf("store: put blob: %w", err)
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()

	h := sha256.New()
	size, err = io.Copy(io.MultiWriter(tmp, h), ctxReader{ctx, r})
	if err != nil {
		return "", 0, fmt.Errorf("store: put blob: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return "", 0, fmt.Errorf("store: put blob: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", 0, fmt.Errorf("store: put blob: %w", err)
	}
	key = "sha256:" + hex.EncodeToString(h.Sum(nil))
	dst, _ := b.path(key)
	if _, err := os.Stat(dst); err == nil {
		return key, size, nil // equal content is stored already
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return "", 0, fmt.Errorf("store: put blob: %w", err)
	}
	// Rename replaces atomically; a concurrent Put of the same content
	// renames an identical file.
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", 0, fmt.Errorf("store: put blob: %w", err)
	}
	tmp = nil
	if d, err := os.Open(filepath.Dir(dst)); err == nil {
		d.Sync() // make the rename durable; best effort
		d.Close()
	}
	return key, size, nil
}

// Open returns the content of the blob. ErrInvalid if key is malformed,
// ErrNotFound if no such blob is stored, ctx's error if it is done. The
// files here open at once; ctx is for stores that reach the network.
func (b *Blobs) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	f, err := b.open(ctx, key)
	if err != nil {
		return nil, err // not a nil *os.File in an interface
	}
	return f, nil
}

// OpenSeeker returns the content of the blob for reading at any offset
// (an *os.File here), so that a download can be served in ranges. Its
// errors are Open's.
func (b *Blobs) OpenSeeker(ctx context.Context, key string) (io.ReadSeekCloser, error) {
	f, err := b.open(ctx, key)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (b *Blobs) open(ctx context.Context, key string) (*os.File, error) {
	p, err := b.path(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: open blob %s: %w", key, err)
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open blob %s: %w", key, err)
	}
	return f, nil
}

// Size returns the size of the blob. ErrInvalid if key is malformed,
// ErrNotFound if no such blob is stored, ctx's error if it is done.
func (b *Blobs) Size(ctx context.Context, key string) (int64, error) {
	p, err := b.path(key)
	if err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("store: stat blob %s: %w", key, err)
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("blob %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("store: stat blob %s: %w", key, err)
	}
	return fi.Size(), nil
}

// ctxReader fails reads once its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
