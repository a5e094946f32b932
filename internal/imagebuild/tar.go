package imagebuild

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// entry is one file system object of a layer. Exactly one of Src, Data or
// Link says what a regular file or symlink holds; directories have none.
type entry struct {
	Name string // slash-separated, relative to /, no leading "./"
	Mode fs.FileMode
	UID  int
	GID  int
	Src  string // a file on disk to copy
	Data []byte // or the bytes themselves
	Link string // a symlink's target
	Dir  bool
}

// tree collects a layer's entries by name: a later Add of the same name
// replaces an earlier one (as a later layer would), and missing parent
// directories are made (0755, root) when the layer is written.
type tree map[string]entry

func (t tree) add(e entry) {
	e.Name = clean(e.Name)
	if e.Name == "" {
		return
	}
	t[e.Name] = e
}

// addDir copies the directory src into the tree under dest, keeping file
// modes and symlinks; skip (relative slash paths) leaves a file or a whole
// directory out.
func (t tree) addDir(src, dest string, skip func(rel string) bool) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel != "." && skip != nil && skip(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		name := path.Join(dest, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			t.add(entry{Name: name, Mode: info.Mode().Perm(), Dir: true})
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			t.add(entry{Name: name, Mode: 0o777, Link: target})
		case info.Mode().IsRegular():
			t.add(entry{Name: name, Mode: info.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky), Src: p})
		default:
			return fmt.Errorf("%s: %s is neither a file, a directory nor a symlink", src, rel)
		}
		return nil
	})
}

func clean(name string) string {
	name = path.Clean("/" + strings.TrimPrefix(name, "./"))
	return strings.TrimPrefix(name, "/")
}

// writeLayer writes the tree as a gzipped tar to w: entries in name order,
// every time set to mtime, owners numeric, so that the same inputs give the
// same bytes (and the same layer digest) on every machine with this Go.
func (t tree) writeLayer(w io.Writer, mtime time.Time) error {
	// Parents first: make every missing directory.
	for name := range t {
		for dir := path.Dir(name); dir != "." && dir != "/"; dir = path.Dir(dir) {
			if _, ok := t[dir]; !ok {
				t[dir] = entry{Name: dir, Mode: 0o755, Dir: true}
			}
		}
	}
	names := make([]string, 0, len(t))
	for name := range t {
		names = append(names, name)
	}
	sort.Strings(names)

	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	for _, name := range names {
		e := t[name]
		h := &tar.Header{
			Name:    name,
			Mode:    unixMode(e.Mode),
			Uid:     e.UID,
			Gid:     e.GID,
			ModTime: mtime,
			Format:  tar.FormatPAX,
		}
		var body io.Reader
		switch {
		case e.Dir:
			h.Typeflag, h.Name = tar.TypeDir, name+"/"
		case e.Link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.Link
		case e.Src != "":
			f, err := os.Open(e.Src)
			if err != nil {
				return err
			}
			info, err := f.Stat()
			if err != nil {
				f.Close()
				return err
			}
			h.Typeflag, h.Size, body = tar.TypeReg, info.Size(), f
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.Data))
			body = strings.NewReader(string(e.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("layer entry %s: %w", name, err)
		}
		if body != nil {
			_, err := io.Copy(tw, body)
			if c, ok := body.(io.Closer); ok {
				c.Close()
			}
			if err != nil {
				return fmt.Errorf("layer entry %s: %w", name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// unixMode is a FileMode's permission bits as tar wants them, with the
// set-user-ID, set-group-ID and sticky bits in their Unix places.
func unixMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}
