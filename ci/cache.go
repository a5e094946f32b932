package ci

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vigil-sec/vigil/scanner"
	"github.com/vigil-sec/vigil/scanner/source"
)

// scanCache is the cache every worker's scans share: engine outputs by
// (engine, version, configuration, content) and engines' partial results,
// kept in the store (scan_cache rows, values in the blob store), so that a
// rescan of an unchanged commit or image digest, on any worker, reads the
// first scan's outputs instead of running the engines again.
type scanCache struct {
	c   ScanCache
	log *slog.Logger
}

// scanCache is Config.Cache logging to log; nil without one.
func (s *Service) scanCache(log *slog.Logger) scanner.Cache {
	if s.cache == nil {
		return nil
	}
	return &scanCache{c: s.cache, log: log}
}

// Get treats a cache that cannot be read as a miss, and says so in the log.
func (c *scanCache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	b, ok, err := c.c.Get(ctx, key)
	if err != nil && ctx.Err() == nil {
		c.log.WarnContext(ctx, "scan cache: read failed; scanning instead", slog.Any("error", err))
	}
	return b, ok, err
}

// Put logs a failed write: it costs a later scan time, never this one.
func (c *scanCache) Put(ctx context.Context, key string, data []byte) error {
	err := c.c.Put(ctx, key, data)
	if err != nil && ctx.Err() == nil {
		c.log.WarnContext(ctx, "scan cache: write failed", slog.Any("error", err))
	}
	return err
}

// Replace logs a failed write, as Put does.
func (c *scanCache) Replace(ctx context.Context, key string, data []byte) error {
	err := c.c.Replace(ctx, key, data)
	if err != nil && ctx.Err() == nil {
		c.log.WarnContext(ctx, "scan cache: write failed", slog.Any("error", err))
	}
	return err
}

// logCacheUse says which engines' outputs came from the cache.
func logCacheUse(ctx context.Context, log *slog.Logger, res *scanner.Result) {
	for _, e := range res.Engines {
		if e.Cached {
			log.InfoContext(ctx, "engine output reused from the scan cache", slog.String("engine", e.ID), slog.String("version", e.Version))
		}
	}
}

// errNotCheckedOut stops an engine that CachedCommitScan could not serve
// from the cache: its commit is not checked out.
var errNotCheckedOut = errors.New("the commit is not checked out")

// selectionKey names the engines that scanned a commit's tree, for a
// registry of engines.
func selectionKey(content string, registry []scanner.Engine) string {
	parts := []string{"scan-selection", content}
	for _, e := range registry {
		parts = append(parts, e.ID, e.Version, e.Config)
	}
	return scanner.CacheKey(parts...)
}

// RememberSelection records which engines scanned t, so that a rescan of
// the same tree can be answered without checking it out.
func RememberSelection(ctx context.Context, c scanner.Cache, t *scanner.Target, registry, selected []scanner.Engine) {
	if c == nil { // a Service without a cache (Config.Cache nil)
		return
	}
	content, err := scanner.ContentKey(ctx, t)
	if err != nil || content == "" {
		return
	}
	ids := make([]string, len(selected))
	for i, e := range selected {
		ids[i] = e.ID
	}
	if b, err := json.Marshal(ids); err == nil {
		_ = c.Put(ctx, selectionKey(content, registry), b)
	}
}

// CachedCommitScan answers a scan of a commit from the cache without
// checking it out: it clones the repository without a working tree (to
// learn the commit's tree), and if the engines that scanned that tree
// before have their outputs in the cache, returns the result they make.
// ok is false otherwise (a first scan, an evicted output, a commit the
// clone lacks): the caller checks out and scans as usual.
func CachedCommitScan(ctx context.Context, c scanner.Cache, registry []scanner.Engine, repo, commit string) (res *scanner.Result, ok bool) {
	return cachedCommitScan(ctx, nil, c, registry, repo, commit)
}

// cachedCommitScan is CachedCommitScan with git confined to the policy p
// (nil: no restriction, as `vigil scan`).
func cachedCommitScan(ctx context.Context, p *source.Policy, c scanner.Cache, registry []scanner.Engine, repo, commit string) (res *scanner.Result, ok bool) {
	if source.CheckRev(commit) != nil {
		return nil, false
	}
	dir, err := os.MkdirTemp("", "vigil-peek-")
	if err != nil {
		return nil, false
	}
	defer os.RemoveAll(dir)
	src := repo
	if !source.IsRepoURL(repo) {
		if src, err = filepath.Abs(repo); err != nil {
			return nil, false
		}
	}
	if _, err := p.Git(ctx, "", src, "clone", "--quiet", "--no-checkout", "--", src, dir); err != nil {
		return nil, false
	}
	out, err := p.Git(ctx, dir, "", "rev-parse", "--verify", "--quiet", "--end-of-options", commit+"^{commit}")
	if err != nil {
		return nil, false
	}
	sha := strings.TrimSpace(out)
	t := &scanner.Target{Kind: scanner.KindGit, Ref: repo, Path: dir, Commit: sha}
	content, err := scanner.ContentKey(ctx, t)
	if err != nil || content == "" {
		return nil, false
	}
	b, hit, err := c.Get(ctx, selectionKey(content, registry))
	var ids []string
	if err != nil || !hit || json.Unmarshal(b, &ids) != nil || len(ids) == 0 {
		return nil, false
	}
	engs := make([]scanner.Engine, 0, len(ids))
	for _, id := range ids {
		i := slices.IndexFunc(registry, func(e scanner.Engine) bool { return e.ID == id })
		if i < 0 {
			return nil, false
		}
		e := registry[i]
		e.Run = func(context.Context, *scanner.Target) (*scanner.Output, error) { return nil, errNotCheckedOut }
		engs = append(engs, e)
	}
	res, err = scanner.Scan(ctx, t, engs, scanner.Options{Cache: c})
	if err != nil {
		return nil, false
	}
	return res, true
}
