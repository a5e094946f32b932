package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ErrNotActivated is returned by calls that need an activation when the
// client has none (never activated, or deactivated).
var ErrNotActivated = errors.New("client: not activated")

// State is what a client keeps between calls: the activation, its token
// and the last nonce of its chain. The token and the nonce are secrets.
type State struct {
	ActivationID   string    `json:"activation_id"`
	AccessToken    string    `json:"access_token"`
	Nonce          string    `json:"nonce"`
	LeaseExpiresAt time.Time `json:"lease_expires_at"`
}

// Store keeps a client's State. Load returns ErrNotActivated when there
// is none.
type Store interface {
	Load(ctx context.Context) (State, error)
	Save(ctx context.Context, st State) error
	Clear(ctx context.Context) error
}

// MemoryStore keeps the state in memory: it is lost when the process ends.
type MemoryStore struct {
	mu sync.Mutex
	st *State
}

// Load returns the saved state.
func (m *MemoryStore) Load(context.Context) (State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.st == nil {
		return State{}, ErrNotActivated
	}
	return *m.st, nil
}

// Save keeps st.
func (m *MemoryStore) Save(_ context.Context, st State) error {
	m.mu.Lock()
	m.st = &st
	m.mu.Unlock()
	return nil
}

// Clear forgets the state.
func (m *MemoryStore) Clear(context.Context) error {
	m.mu.Lock()
	m.st = nil
	m.mu.Unlock()
	return nil
}

// maxStateFile bounds what FileStore reads.
const maxStateFile = 64 << 10

// FileStore keeps the state as JSON in the file Path, readable only by
// its owner (0600). Save writes a temporary file in the same directory,
// syncs it and renames it over Path, so a crash leaves the old state or
// the new one, never a torn file.
type FileStore struct {
	Path string
}

// Load reads the state file.
func (f *FileStore) Load(context.Context) (State, error) {
	fh, err := os.Open(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, ErrNotActivated
	}
	if err != nil {
		return State{}, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxStateFile+1))
	if err != nil {
		return State{}, err
	}
	if len(b) > maxStateFile {
		return State{}, fmt.Errorf("state file %s is larger than %d bytes", f.Path, maxStateFile)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return State{}, fmt.Errorf("state file %s: %w", f.Path, err)
	}
	return st, nil
}

// Save replaces the state file atomically.
func (f *FileStore) Save(_ context.Context, st State) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	dir := filepath.Dir(f.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.Path)+".*") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), f.Path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil { // make the rename durable
		d.Sync()
		d.Close()
	}
	return nil
}

// Clear removes the state file.
func (f *FileStore) Clear(context.Context) error {
	if err := os.Remove(f.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
