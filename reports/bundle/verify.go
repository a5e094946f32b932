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
	"io/fs"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/vigil-sec/vigil/reports/attest"
)

// ErrNotVerified matches every *Error: the bundle is not what the
// signature vouches for.
var ErrNotVerified = errors.New("the bundle did not verify")

// The checks an *Error names.
const (
	CheckZIP         = "zip"         // not a ZIP that can be read
	CheckEntry       = "entry"       // an entry that cannot be part of a bundle: a bad name, a duplicate, a directory, a link
	CheckLayout      = "layout"      // bytes of the ZIP outside its entries and directory
	CheckAttestation = "attestation" // attestation.intoto.jsonl unreadable or not one envelope
	CheckSignature   = "signature"   // no good signature by a trusted key
	CheckPredicate   = "predicate"   // not an audit report, or not naming the key that signed
	CheckMissing     = "missing"     // a subject of the statement is not in the bundle
	CheckAdded       = "added"       // a file of the bundle is not a subject
	CheckSize        = "size"        // a file's size differs from the signed one
	CheckDigest      = "digest"      // a file's SHA-256 differs from the signed one
)

// Error is a check the bundle failed, naming the file when it is about
// one.
type Error struct {
	File  string // "" for the bundle as a whole
	Check string
	Err   error
}

func (e *Error) Error() string {
	if e.File == "" {
		return e.Check + ": " + e.Err.Error()
	}
	return printable(e.File) + ": " + e.Check + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes every *Error match ErrNotVerified.
func (e *Error) Is(target error) bool { return target == ErrNotVerified }

func fail(file, check, format string, args ...any) *Error {
	return &Error{File: file, Check: check, Err: fmt.Errorf(format, args...)}
}

// printable quotes a name that holds anything but printable characters.
func printable(name string) string {
	if strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(name)
	}
	return name
}

// Result is a bundle that verified.
type Result struct {
	// KeyID is the ID of the key whose signature was good.
	KeyID  string              `json:"key_id"`
	Report *attest.AuditReport `json:"report"`
	// Files are every file of the bundle, attestation.intoto.jsonl
	// included, sorted by name.
	Files []Entry `json:"files"`
}

// Verify verifies the bundle at path: a ZIP file or a directory where one
// was extracted. An error that is not ErrNotVerified is one of reading
// the path (fs.ErrNotExist, …) or of the keys.
func Verify(ctx context.Context, path string, keys []attest.PublicKey) (*Result, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if info.IsDir() {
		return VerifyDir(ctx, path, keys)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return VerifyZip(ctx, f, info.Size(), keys)
}

// item is a file of a bundle, from a ZIP entry or a directory.
type item struct {
	name string
	size int64
	open func() (io.ReadCloser, error)
}

// VerifyZip verifies the bundle held in the size bytes of r.
func VerifyZip(ctx context.Context, r io.ReaderAt, size int64, keys []attest.PublicKey) (*Result, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // names are checked below, and named
		return nil, fail("", CheckZIP, "%v", err)
	}
	if len(zr.File) > MaxFiles {
		return nil, fail("", CheckEntry, "%d entries, at most %d", len(zr.File), MaxFiles)
	}
	items := make([]item, 0, len(zr.File))
	for _, f := range zr.File {
		if err := checkZipEntry(f); err != nil {
			return nil, err
		}
		size, ok := toInt64(f.UncompressedSize64)
		if !ok {
			return nil, fail(f.Name, CheckEntry, "it declares %d bytes", f.UncompressedSize64)
		}
		items = append(items, item{name: f.Name, size: size, open: f.Open})
	}
	if err := checkNames(items); err != nil {
		return nil, err
	}
	if err := checkLayout(r, size, zr); err != nil {
		return nil, &Error{Check: CheckLayout, Err: err}
	}
	return verifyItems(ctx, items, keys)
}

// checkZipEntry refuses what a bundle's ZIP never holds: directories,
// links and other non-regular files, encryption, unknown compression, and
// sizes past int64.
func checkZipEntry(f *zip.File) error {
	switch mode := f.Mode(); {
	case strings.HasSuffix(f.Name, "/") || mode.IsDir():
		return fail(f.Name, CheckEntry, "a directory entry; a bundle holds only files")
	case mode&fs.ModeSymlink != 0:
		return fail(f.Name, CheckEntry, "a symbolic link; a bundle holds only regular files")
	case !mode.IsRegular():
		return fail(f.Name, CheckEntry, "not a regular file (mode %v)", mode)
	case f.Flags&0x1 != 0:
		return fail(f.Name, CheckEntry, "encrypted")
	case f.Method != zip.Store && f.Method != zip.Deflate:
		return fail(f.Name, CheckEntry, "compression method %d; want Store or Deflate", f.Method)
	case f.UncompressedSize64 > math.MaxInt64:
		return fail(f.Name, CheckEntry, "declares %d bytes", f.UncompressedSize64)
	}
	return nil
}

// VerifyDir verifies the bundle extracted in dir. Symbolic links and
// other non-regular files in it fail the check; subdirectories are read.
func VerifyDir(ctx context.Context, dir string, keys []attest.PublicKey) (*Result, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	var items []item
	err = fs.WalkDir(root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case name == "." || d.IsDir():
			return nil
		case d.Type()&fs.ModeSymlink != 0:
			return fail(name, CheckEntry, "a symbolic link; a bundle holds only regular files")
		case !d.Type().IsRegular():
			return fail(name, CheckEntry, "not a regular file (mode %v)", d.Type())
		case len(items) == MaxFiles:
			return fail("", CheckEntry, "more than %d files", MaxFiles)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		items = append(items, item{name: name, size: info.Size(), open: func() (io.ReadCloser, error) {
			return openRegular(root, name)
		}})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := checkNames(items); err != nil {
		return nil, err
	}
	return verifyItems(ctx, items, keys)
}

// openRegular opens a file of root, refusing it if it is no longer a
// regular file (replaced after the walk).
func openRegular(root *os.Root, name string) (io.ReadCloser, error) {
	f, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	if info, err := f.Stat(); err != nil || !info.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("no longer a regular file")
	}
	return f, nil
}

// checkNames refuses names that are not clean relative paths, and names
// that clash when extracted.
func checkNames(items []item) error {
	names := make([]string, len(items))
	for i, it := range items {
		if !validName(it.name) {
			return fail(it.name, CheckEntry, "not a clean relative path")
		}
		names[i] = it.name
	}
	if name, err := clash(names); err != nil {
		return &Error{File: name, Check: CheckEntry, Err: err}
	}
	return nil
}

// clash finds a name that appears twice, exactly or on a case-insensitive
// file system, or that is both a file and a folder ("a" and "a/b").
func clash(names []string) (string, error) {
	seen := make(map[string]string, len(names))
	for _, name := range names {
		folded := strings.ToLower(name)
		if prev, ok := seen[folded]; ok {
			if prev == name {
				return name, errors.New("appears twice")
			}
			return name, fmt.Errorf("differs from %s only in case", printable(prev))
		}
		seen[folded] = name
	}
	for _, name := range names {
		for i := range len(name) {
			if name[i] != '/' {
				continue
			}
			if file, ok := seen[strings.ToLower(name[:i])]; ok {
				return name, fmt.Errorf("is in a folder named like the file %s", printable(file))
			}
		}
	}
	return "", nil
}

// validName: a relative slash-separated path without ".", ".." or empty
// segments, backslashes or control characters.
func validName(name string) bool {
	return len(name) <= maxNameLen && fs.ValidPath(name) && name != "." &&
		!strings.ContainsRune(name, '\\') && strings.IndexFunc(name, unicode.IsControl) < 0
}

// verifyItems verifies the bundle made of items, whose names are checked.
func verifyItems(ctx context.Context, items []item, keys []attest.PublicKey) (*Result, error) {
	i := slices.IndexFunc(items, func(it item) bool { return it.name == AttestationName })
	if i < 0 {
		return nil, fail(AttestationName, CheckMissing, "the bundle has no attestation")
	}
	line, err := readAttestation(items[i])
	if err != nil {
		return nil, err
	}
	v, report, err := verifyEnvelope(ctx, line, keys)
	if err != nil {
		return nil, err
	}
	subjects, err := subjectsByName(v.Statement)
	if err != nil {
		return nil, err
	}

	var errs []error
	files := []Entry{entryOf(AttestationName, line)}
	for _, it := range items {
		if it.name == AttestationName {
			continue
		}
		s, ok := subjects[it.name]
		if !ok {
			errs = append(errs, fail(it.name, CheckAdded, "not a subject of the attestation"))
			continue
		}
		delete(subjects, it.name)
		sum, err := checkItem(ctx, it, s)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		files = append(files, Entry{Name: it.name, Size: it.size, SHA256: sum})
	}
	for _, name := range slices.Sorted(maps.Keys(subjects)) {
		errs = append(errs, fail(name, CheckMissing, "a subject of the attestation is not in the bundle"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	slices.SortFunc(files, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return &Result{KeyID: v.KeyID, Report: report, Files: files}, nil
}

// readAttestation reads attestation.intoto.jsonl, bounded, and returns
// its bytes.
func readAttestation(it item) ([]byte, error) {
	if it.size > MaxAttestationSize {
		return nil, fail(it.name, CheckAttestation, "%d bytes, at most %d", it.size, MaxAttestationSize)
	}
	rc, err := it.open()
	if err != nil {
		return nil, fail(it.name, CheckAttestation, "%v", err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, MaxAttestationSize+1))
	switch {
	case err != nil:
		return nil, fail(it.name, CheckAttestation, "%v", err)
	case int64(len(data)) != it.size:
		return nil, fail(it.name, CheckAttestation, "%d bytes, not the %d declared", len(data), it.size)
	}
	return data, nil
}

// verifyEnvelope checks the one envelope of the attestation and its
// predicate.
func verifyEnvelope(ctx context.Context, data []byte, keys []attest.PublicKey) (*attest.Verified, *attest.AuditReport, error) {
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	if len(lines) != 1 {
		return nil, nil, fail(AttestationName, CheckAttestation, "%d lines; a bundle's attestation is one DSSE envelope", len(lines))
	}
	env, err := attest.ParseEnvelope(lines[0])
	if err != nil {
		return nil, nil, fail(AttestationName, CheckAttestation, "%v", err)
	}
	v, err := attest.Verify(ctx, env, keys)
	switch {
	case errors.Is(err, attest.ErrNoTrustedSignature):
		return nil, nil, &Error{File: AttestationName, Check: CheckSignature, Err: err}
	case errors.Is(err, attest.ErrMalformed):
		return nil, nil, &Error{File: AttestationName, Check: CheckAttestation, Err: err}
	case err != nil:
		return nil, nil, err
	}
	report, err := v.Statement.AuditReport()
	if err != nil {
		return nil, nil, &Error{File: AttestationName, Check: CheckPredicate, Err: err}
	}
	if report.SigningKeyID != v.KeyID {
		return nil, nil, fail(AttestationName, CheckPredicate, "the predicate names signing key %q but key %s signed", report.SigningKeyID, v.KeyID)
	}
	return v, report, nil
}

// subjectsByName indexes the statement's subjects, refusing names a
// bundle cannot hold and names given twice.
func subjectsByName(st *attest.Statement) (map[string]attest.Subject, error) {
	out := make(map[string]attest.Subject, len(st.Subject))
	for _, s := range st.Subject {
		switch _, dup := out[s.Name]; {
		case !validName(s.Name) || s.Name == AttestationName:
			return nil, fail(AttestationName, CheckAttestation, "subject %q is not a file a bundle can hold", s.Name)
		case dup:
			return nil, fail(AttestationName, CheckAttestation, "subject %q appears twice", s.Name)
		}
		out[s.Name] = s
	}
	return out, nil
}

// checkItem checks a file's size, before reading it, then its SHA-256,
// and returns the digest.
func checkItem(ctx context.Context, it item, s attest.Subject) (string, error) {
	if s.Annotations != nil && it.size != s.Annotations.Size {
		return "", fail(it.name, CheckSize, "%d bytes, the attestation says %d", it.size, s.Annotations.Size)
	}
	rc, err := it.open()
	if err != nil {
		return "", fail(it.name, CheckDigest, "%v", err)
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, ctxReader{ctx, rc}); err != nil {
		return "", fail(it.name, CheckDigest, "%v", err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if sum != s.SHA256() {
		return "", fail(it.name, CheckDigest, "SHA-256 %s, the attestation says %s", sum, s.SHA256())
	}
	return sum, nil
}
