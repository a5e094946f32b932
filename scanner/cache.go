package scanner

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Cache holds engine outputs (and engines' own partial results, such as
// the SAST engine's per-package results) by key, so that a scan of content
// scanned before reuses what the first scan found. Keys are lowercase hex
// SHA-256 digests made with CacheKey; values are opaque bytes. The server
// shares one store-backed cache between all its workers.
//
// A Cache must be safe for concurrent use. Get of an unknown key returns
// ok false and no error; errors are for a cache that cannot be read, and
// a scan treats them as misses.
type Cache interface {
	Get(ctx context.Context, key string) (data []byte, ok bool, err error)
	Put(ctx context.Context, key string, data []byte) error
}

// Replacer is a Cache that can also overwrite a value. Values under pure
// keys never change; an engine that keeps "the latest of something" (the
// last catalog of a repository) replaces it when the cache allows, and
// else keeps the first.
type Replacer interface {
	Replace(ctx context.Context, key string, data []byte) error
}

// Codec encodes an engine's Output for the cache and decodes it back. An
// engine whose Output holds more than JSON carries (the SBOM engine's
// syft document) supplies its own; nil means the engine is not cached.
type Codec struct {
	Encode func(*Output) ([]byte, error)
	Decode func([]byte) (*Output, error)
}

// JSONCodec encodes an Output's findings and warnings as JSON. It is for
// engines whose Output has no SBOM.
var JSONCodec = &Codec{
	Encode: func(o *Output) ([]byte, error) {
		if o.SBOM != nil {
			return nil, errors.New("scanner: JSONCodec cannot encode an SBOM's document")
		}
		return json.Marshal(o)
	},
	Decode: func(b []byte) (*Output, error) {
		var o Output
		if err := json.Unmarshal(b, &o); err != nil {
			return nil, fmt.Errorf("scanner: cached output: %w", err)
		}
		return &o, nil
	},
}

// CacheKey is the key of a cached value: the SHA-256, in hex, of the parts
// joined with NUL bytes. Callers name what the value is a pure function
// of: the engine ID and version, its output-changing configuration and
// the content scanned.
func CacheKey(parts ...string) string {
	h := sha256.New()
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{0})
		}
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ContentKey names the content of a target for the scan cache: the tree
// hash of a Git target's commit (equal trees are equal files, whatever the
// commit), and the manifest digest of an image with the reference it was
// read by (the SBOM's document names it). A directory has none: its files
// may change at any time, so it is never served from the cache.
func ContentKey(ctx context.Context, t *Target) (string, error) {
	switch t.Kind {
	case KindGit:
		if t.Path == "" || t.Commit == "" {
			return "", nil
		}
		cmd := exec.CommandContext(ctx, "git", "rev-parse", "--verify", "--quiet", "--end-of-options", t.Commit+"^{tree}")
		cmd.Dir = t.Path
		var out bytes.Buffer
		cmd.Stdout = &out
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("scanner: tree of commit %s: %w", t.Commit, err)
		}
		return "git-tree:" + strings.TrimSpace(out.String()), nil
	case KindImage:
		if t.Digest == "" {
			return "", nil
		}
		return "image:" + t.Digest + "\x00" + t.Ref, nil
	}
	return "", nil
}

type cacheCtxKey struct{}

// WithCache returns a context that carries c to the engines Scan runs, for
// engines that cache partial results of their own (CacheFrom).
func WithCache(ctx context.Context, c Cache) context.Context {
	if c == nil {
		return ctx
	}
	return context.WithValue(ctx, cacheCtxKey{}, c)
}

// CacheFrom returns the cache Scan was given, or nil.
func CacheFrom(ctx context.Context) Cache {
	c, _ := ctx.Value(cacheCtxKey{}).(Cache)
	return c
}

// cachedRun runs e on t through the cache: a stored output of the same
// engine, version, configuration and content is decoded instead of
// running the engine; a fresh output is stored. Cache failures fall back
// to running the engine; they never fail the scan.
func cachedRun(ctx context.Context, c Cache, content string, e Engine, t *Target) (out *Output, hit bool, err error) {
	if c == nil || content == "" || e.Codec == nil {
		out, err = e.Run(ctx, t)
		return out, false, err
	}
	key := CacheKey("engine-output", e.ID, e.Version, e.Config, content)
	if b, ok, gerr := c.Get(ctx, key); gerr == nil && ok {
		if out, derr := e.Codec.Decode(b); derr == nil {
			return out, true, nil
		}
	}
	out, err = e.Run(ctx, t)
	if err != nil {
		return nil, false, err
	}
	if len(out.Unanalysed) > 0 {
		// A part that did not load may load next time (a module proxy
		// that was down): only a whole answer is kept.
		return out, false, nil
	}
	if b, eerr := e.Codec.Encode(out); eerr == nil {
		_ = c.Put(ctx, key, b) // a failed put only costs the next scan time
	}
	return out, false, nil
}
