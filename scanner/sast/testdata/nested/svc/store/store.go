// Package store reads files without care.
package store

import (
	"os"
	"path/filepath"
)

// Read reads name under /srv.
func Read(name string) ([]byte, error) {
	os.Chmod(filepath.Join("/srv", name), 0o777)
	return os.ReadFile(filepath.Join("/srv", name))
}
