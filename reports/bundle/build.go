package bundle

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/vigil-sec/vigil/reports/attest"
)

// The files Build adds to every bundle.
const (
	AttestationName = "attestation.intoto.jsonl"
	ReadmeName      = "README.txt"
)

// Limits of what Build writes and Verify reads.
const (
	// MaxFiles is the most entries a bundle may hold.
	MaxFiles = 1000
	// MaxAttestationSize bounds attestation.intoto.jsonl.
	MaxAttestationSize = 4 << 20
	// maxNameLen bounds a file's name.
	maxNameLen = 255
)

// Every entry's fixed time, 1980-01-01 00:00:00 (the first MS-DOS date),
// and mode.
const (
	dosDate  = 1<<5 | 1 // year 1980 (0 << 9), month 1 (<< 5), day 1
	dosTime  = 0
	fileMode = 0o644
)

// File is a file to put in a bundle: Size bytes read from Content, which
// Build reads twice (to hash, then to write).
type File struct {
	Name    string
	Size    int64
	Content io.ReaderAt
}

// Bytes is a File holding data.
func Bytes(name string, data []byte) File {
	return File{Name: name, Size: int64(len(data)), Content: bytes.NewReader(data)}
}

// Entry is a file of a built or verified bundle.
type Entry struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // lower-case hex
}

// Config is Build's optional settings; nil means the defaults.
type Config struct {
	// KeyURL is where README.txt tells the recipient to download the
	// public key as PEM; when empty it says to ask the vendor for the key
	// by its ID.
	KeyURL string
}

// ErrInput is a file Build refuses: a bad or reserved name, a duplicate,
// a size that does not match the content.
var ErrInput = errors.New("bad bundle input")

// fileName is what Build accepts as a file's name: slash-separated
// segments of letters, digits, '.', '_' and '-', each starting with a
// letter or a digit. Such a name needs no quoting in a shell, a JSON
// string or a sed expression (README.txt's recipes rely on it).
var fileName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$`)

// Build writes the bundle of files to w as a ZIP: the files, README.txt
// and attestation.intoto.jsonl, whose statement's subjects are every
// other file (name, SHA-256, size) and whose predicate is the report,
// with its times in UTC and SigningKeyID set to the signer's key. It
// returns the bundle's entries, sorted by name.
func Build(ctx context.Context, w io.Writer, files []File, report *attest.AuditReport, signer *attest.Signer, cfg *Config) ([]Entry, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	if err := report.Validate(); err != nil {
		return nil, err
	}
	files, err := sortedFiles(files)
	if err != nil {
		return nil, err
	}
	entries := make([]Entry, 0, len(files)+2)
	for _, f := range files {
		sum, err := hashFile(ctx, f, nil)
		if err != nil {
			return nil, err
		}
		entries = append(entries, Entry{Name: f.Name, Size: f.Size, SHA256: sum})
	}

	pred := report.UTC()
	pred.SigningKeyID = signer.KeyID()
	readmeText, err := readme(pred, entries, cfg.KeyURL)
	if err != nil {
		return nil, fmt.Errorf("bundle: writing %s: %w", ReadmeName, err)
	}
	entries = append(entries, entryOf(ReadmeName, readmeText))
	line, err := attestation(ctx, entries, &pred, signer)
	if err != nil {
		return nil, err
	}
	entries = append(entries, entryOf(AttestationName, line))
	slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })

	generated := map[string]File{ReadmeName: Bytes(ReadmeName, readmeText), AttestationName: Bytes(AttestationName, line)}
	given := make(map[string]File, len(files))
	for _, f := range files {
		given[f.Name] = f
	}
	zw := zip.NewWriter(w)
	for _, e := range entries {
		if f, ok := generated[e.Name]; ok {
			err = writeEntry(ctx, zw, f, e.SHA256)
		} else {
			err = writeEntry(ctx, zw, given[e.Name], e.SHA256)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	return entries, nil
}

// sortedFiles checks the files' names and sizes and sorts them by name.
func sortedFiles(files []File) ([]File, error) {
	if len(files)+2 > MaxFiles {
		return nil, fmt.Errorf("%w: %d files, at most %d", ErrInput, len(files), MaxFiles-2)
	}
	names := []string{ReadmeName, AttestationName}
	for _, f := range files {
		switch {
		case len(f.Name) > maxNameLen || !fileName.MatchString(f.Name):
			return nil, fmt.Errorf("%w: file name %q: use letters, digits, '.', '_' and '-' in '/'-separated parts", ErrInput, f.Name)
		case strings.EqualFold(f.Name, ReadmeName) || strings.EqualFold(f.Name, AttestationName):
			return nil, fmt.Errorf("%w: %s is a name the bundle keeps for itself", ErrInput, f.Name)
		case f.Size < 0 || f.Content == nil:
			return nil, fmt.Errorf("%w: %s has no content", ErrInput, f.Name)
		}
		names = append(names, f.Name)
	}
	if name, err := clash(names); err != nil {
		return nil, fmt.Errorf("%w: %s %v", ErrInput, name, err)
	}
	out := slices.Clone(files)
	slices.SortFunc(out, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// attestation signs the statement about the entries and returns it as a
// line of attestation.intoto.jsonl.
func attestation(ctx context.Context, entries []Entry, pred *attest.AuditReport, signer *attest.Signer) ([]byte, error) {
	subjects := make([]attest.Subject, 0, len(entries))
	for _, e := range entries {
		subjects = append(subjects, attest.Subject{
			Name: e.Name, Digest: map[string]string{"sha256": e.SHA256},
			Annotations: &attest.Annotations{Size: e.Size},
		})
	}
	slices.SortFunc(subjects, func(a, b attest.Subject) int { return strings.Compare(a.Name, b.Name) })
	st, err := attest.NewStatement(subjects, attest.PredicateType, pred)
	if err != nil {
		return nil, err
	}
	env, err := signer.Sign(ctx, st)
	if err != nil {
		return nil, err
	}
	line, err := attest.MarshalEnvelope(env)
	if err != nil {
		return nil, err
	}
	return append(line, '\n'), nil
}

func entryOf(name string, data []byte) Entry {
	sum := sha256.Sum256(data)
	return Entry{Name: name, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
}

// writeEntry writes f as the next ZIP entry, checking that its content
// still has the digest it had when it was hashed.
func writeEntry(ctx context.Context, zw *zip.Writer, f File, want string) error {
	fh := &zip.FileHeader{
		Name:   f.Name,
		Method: zip.Deflate,
		// Set through the MS-DOS fields: the Modified field would add an
		// extended-timestamp extra field.
		ModifiedDate: dosDate,
		ModifiedTime: dosTime,
	}
	fh.SetMode(fileMode)
	dst, err := zw.CreateHeader(fh)
	if err != nil {
		return fmt.Errorf("bundle: %s: %w", f.Name, err)
	}
	sum, err := hashFile(ctx, f, dst)
	if err != nil {
		return err
	}
	if sum != want {
		return fmt.Errorf("%w: %s changed while the bundle was built", ErrInput, f.Name)
	}
	return nil
}

// hashFile reads the file's Size bytes, copying them to w when w is not
// nil, and returns their SHA-256.
func hashFile(ctx context.Context, f File, w io.Writer) (string, error) {
	h := sha256.New()
	dst := io.Writer(h)
	if w != nil {
		dst = io.MultiWriter(h, w)
	}
	n, err := io.Copy(dst, ctxReader{ctx, io.NewSectionReader(f.Content, 0, f.Size)})
	if err != nil {
		return "", fmt.Errorf("bundle: reading %s: %w", f.Name, err)
	}
	if n != f.Size {
		return "", fmt.Errorf("%w: %s holds %d bytes, not the %d it was given with", ErrInput, f.Name, n, f.Size)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ctxReader stops reading once ctx is done.
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
