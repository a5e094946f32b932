package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"regexp"
)

// The scan cache (migration 0008): values in the blob store, indexed by
// cache key in the scan_cache table, so that every worker of a server,
// on one host or many, sees what any of them stored.

// MaxCacheValue bounds a cached value; a larger one is not stored, and a
// stored one that grew past it is not read.
const MaxCacheValue = 512 << 20

// cacheKeyRE is the form of a cache key: a hex SHA-256, as
// scanner.CacheKey makes.
var cacheKeyRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ScanCache is the store-backed scanner.Cache.
type ScanCache struct {
	db    *DB
	blobs *Blobs
}

// NewScanCache returns the cache kept in db and blobs.
func NewScanCache(db *DB, blobs *Blobs) *ScanCache {
	return &ScanCache{db: db, blobs: blobs}
}

// Get returns the value stored under key; ok is false if there is none,
// or if its blob has gone.
func (c *ScanCache) Get(ctx context.Context, key string) (data []byte, ok bool, err error) {
	if !cacheKeyRE.MatchString(key) {
		return nil, false, fmt.Errorf("%w: cache key %q is not 64 lowercase hex digits", ErrInvalid, key)
	}
	var blobKey string
	err = c.db.queryRow(ctx, "SELECT blob_key FROM scan_cache WHERE cache_key = ?", key).Scan(&blobKey)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: get cache entry %s: %w", key, err)
	}
	rc, err := c.blobs.Open(ctx, blobKey)
	if errors.Is(err, ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer rc.Close()
	data, err = io.ReadAll(io.LimitReader(rc, MaxCacheValue+1))
	if err != nil {
		return nil, false, fmt.Errorf("store: read cache entry %s: %w", key, err)
	}
	if len(data) > MaxCacheValue {
		return nil, false, nil
	}
	return data, true, nil
}

// Put stores data under key. Storing under a key that has a value already
// keeps the first: values are pure functions of their keys, so both are
// equal, and concurrent puts by two workers are harmless.
func (c *ScanCache) Put(ctx context.Context, key string, data []byte) error {
	if !cacheKeyRE.MatchString(key) {
		return fmt.Errorf("%w: cache key %q is not 64 lowercase hex digits", ErrInvalid, key)
	}
	if len(data) > MaxCacheValue {
		return fmt.Errorf("%w: cache value of %d bytes is over the %d-byte limit", ErrInvalid, len(data), MaxCacheValue)
	}
	blobKey, size, err := c.blobs.Put(ctx, bytes.NewReader(data))
	if err != nil {
		return err
	}
	_, err = c.db.exec(ctx, `INSERT INTO scan_cache (cache_key, blob_key, size, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (cache_key) DO NOTHING`, key, blobKey, size, c.db.timeArg(now()))
	if err != nil {
		return fmt.Errorf("store: put cache entry %s: %w", key, err)
	}
	return nil
}

// Replace stores data under key, replacing any value there.
func (c *ScanCache) Replace(ctx context.Context, key string, data []byte) error {
	if !cacheKeyRE.MatchString(key) {
		return fmt.Errorf("%w: cache key %q is not 64 lowercase hex digits", ErrInvalid, key)
	}
	if len(data) > MaxCacheValue {
		return fmt.Errorf("%w: cache value of %d bytes is over the %d-byte limit", ErrInvalid, len(data), MaxCacheValue)
	}
	blobKey, size, err := c.blobs.Put(ctx, bytes.NewReader(data))
	if err != nil {
		return err
	}
	_, err = c.db.exec(ctx, `INSERT INTO scan_cache (cache_key, blob_key, size, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (cache_key) DO UPDATE SET blob_key = excluded.blob_key, size = excluded.size, created_at = excluded.created_at`,
		key, blobKey, size, c.db.timeArg(now()))
	if err != nil {
		return fmt.Errorf("store: replace cache entry %s: %w", key, err)
	}
	return nil
}

// CacheEntries returns how many values the cache holds.
func (c *ScanCache) CacheEntries(ctx context.Context) (int, error) {
	var n int
	if err := c.db.queryRow(ctx, "SELECT count(*) FROM scan_cache").Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count cache entries: %w", err)
	}
	return n, nil
}
