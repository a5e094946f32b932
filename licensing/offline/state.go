package offline

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// State is what a client remembers between verifications: the greatest
// time it has seen, from the server's last-seen times and its own clock.
type State struct {
	MaxSeen time.Time `json:"max_seen"`
}

// LoadState reads a state file; a missing file is an empty state.
func LoadState(path string) (*State, error) {
	b, err := readBounded(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &State{}, nil
	}
	if err != nil {
		return nil, err
	}
	var st State
	if err := decodeStrict(b, MaxEnvelope, &st, "state file "+path); err != nil {
		return nil, err
	}
	return &st, nil
}

// Save writes the state file, readable by its owner only.
func (st *State) Save(path string) error {
	b, _ := json.Marshal(st)
	return WriteFile(path, append(b, '\n'))
}

// ReadServerKey reads a server key file.
func ReadServerKey(path string) (*ServerKey, error) {
	b, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	sk, err := ParseServerKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return sk, nil
}

// ReadClientKey reads a client key file.
func ReadClientKey(path string) (*ClientKey, error) {
	b, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	ck, err := ParseClientKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ck, nil
}

// WriteClientKey writes a client key file, readable by its owner only.
func WriteClientKey(path string, ck *ClientKey) error {
	b, _ := json.MarshalIndent(ck, "", "  ") // #nosec G117 -- the client key file, written 0600 for its owner
	return WriteFile(path, append(b, '\n'))
}

// ReadEnvelope reads an envelope file of the purpose.
func ReadEnvelope(path, purpose string) (*Envelope, error) {
	b, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	env, err := ParseEnvelope(b, purpose)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return env, nil
}

// readBounded reads at most MaxEnvelope bytes of the file.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path) // #nosec G304 -- a file the user names; read bounded and parsed strictly
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxEnvelope+1))
	if err != nil {
		return nil, fmt.Errorf("offline: read %s: %w", path, err)
	}
	if len(b) > MaxEnvelope {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrMalformed, path, MaxEnvelope)
	}
	return b, nil
}

// WriteFile writes data to path atomically (a temporary file renamed
// over it), with mode 0600.
func WriteFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("offline: write %s: %w", path, err)
	}
	defer os.Remove(f.Name()) // after the rename, a no-op
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(data)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("offline: write %s: %w", path, err)
	}
	return nil
}
