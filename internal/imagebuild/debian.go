package imagebuild

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Debian's packages go into the base layer without being installed: no
// maintainer script runs. So the layer holds what the packages ship plus
// what their scripts would have made that Vigil needs (the CA bundle), and
// the dpkg database as distroless images keep it (/var/lib/dpkg/status.d/),
// which SBOM tools such as syft read: the image's SBOM lists them.

// Package is a Debian package the base layer was made from.
type Package struct {
	Name    string
	Version string
	Arch    string
	Deb     string // the downloaded .deb
	control []byte // its control file
}

// DefaultDebianRoots are the packages the image needs: git (commit scans
// clone and check out through it, over https), the CA certificates, and
// dash for /bin/sh (git runs a local repository's upload-pack through it).
var DefaultDebianRoots = []string{"git", "ca-certificates", "dash"}

// DefaultDebianExclude are dependencies of the roots that only matter when
// a package is installed by dpkg (maintainer scripts, debconf) or for git
// commands a scan never runs (perl-based ones, the manual pages): leaving
// them out keeps the image small, and nothing Vigil runs loads them.
var DefaultDebianExclude = []string{
	"debconf", "cdebconf", "dpkg", "install-info", "perl", "perl-base",
	"perl-modules-5.36", "libperl5.36", "liberror-perl", "git-man",
	"libdebian-installer4", "libnewt0.52", "libslang2", "libtextwrap1",
	"readline-common", "libreadline8", "tar", "libgdbm6", "libgdbm-compat4",
	"libdb5.3", "openssl",
}

// ResolveDebian lists the packages roots need, by apt-cache's Depends and
// PreDepends (not Recommends), leaving out exclude and what only excluded
// packages need. Virtual packages resolve to the first provider apt names.
func ResolveDebian(ctx context.Context, roots, exclude []string) ([]string, error) {
	skip := map[string]bool{}
	for _, e := range exclude {
		skip[e] = true
	}
	seen := map[string]bool{}
	queue := append([]string(nil), roots...)
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if seen[name] || skip[name] {
			continue
		}
		seen[name] = true
		out, err := run(ctx, "", "apt-cache", "depends", "--no-recommends", "--no-suggests",
			"--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", name)
		if err != nil {
			return nil, fmt.Errorf("resolving Debian package %s: %w", name, err)
		}
		deps, err := parseDepends(out)
		if err != nil {
			return nil, fmt.Errorf("resolving Debian package %s: %w", name, err)
		}
		queue = append(queue, deps...)
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// parseDepends reads `apt-cache depends PKG`: lines "  Depends: NAME" or
// "  PreDepends: NAME"; a virtual "<name>" is followed by its providers,
// indented further, and the first one is taken; "|Depends:" marks the first
// of alternatives, the first being taken.
func parseDepends(out []byte) ([]string, error) {
	var deps []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	virtual := false
	alternative := false
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case virtual && strings.HasPrefix(line, "    ") && !strings.Contains(trimmed, ":"):
			deps = append(deps, strings.Split(trimmed, ":")[0])
			virtual = false
			continue
		case strings.HasPrefix(trimmed, "|Depends:"), strings.HasPrefix(trimmed, "|PreDepends:"):
			if alternative {
				continue
			}
			alternative = true
		case strings.HasPrefix(trimmed, "Depends:"), strings.HasPrefix(trimmed, "PreDepends:"):
			if alternative {
				alternative = false
				continue
			}
		default:
			continue
		}
		virtual = false
		name := strings.TrimSpace(trimmed[strings.Index(trimmed, ":")+1:])
		if strings.HasPrefix(name, "<") {
			virtual = true
			continue
		}
		deps = append(deps, strings.Split(name, ":")[0])
	}
	return deps, sc.Err()
}

// FetchDebian downloads the packages into dir with apt-get download (the
// machine's configured Debian mirror) and reads their control files.
func FetchDebian(ctx context.Context, dir string, names []string) ([]Package, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if _, err := run(ctx, dir, "apt-get", append([]string{"download", "-q"}, names...)...); err != nil {
		return nil, fmt.Errorf("downloading Debian packages: %w", err)
	}
	var pkgs []Package
	for _, name := range names {
		matches, _ := filepath.Glob(filepath.Join(dir, name+"_*.deb"))
		if len(matches) == 0 {
			return nil, fmt.Errorf("apt-get download left no .deb for %s in %s", name, dir)
		}
		sort.Strings(matches)
		deb := matches[len(matches)-1]
		control, err := run(ctx, "", "dpkg-deb", "-f", deb)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", deb, err)
		}
		p := Package{Deb: deb, control: control}
		for _, line := range strings.Split(string(control), "\n") {
			k, v, _ := strings.Cut(line, ":")
			switch k {
			case "Package":
				p.Name = strings.TrimSpace(v)
			case "Version":
				p.Version = strings.TrimSpace(v)
			case "Architecture":
				p.Arch = strings.TrimSpace(v)
			}
		}
		if p.Name != name {
			return nil, fmt.Errorf("%s holds package %q, not %s", deb, p.Name, name)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

// merged maps the directories Debian merged into /usr (bookworm's
// usrmerge) to their place under /usr; the layer has them as symlinks.
var merged = map[string]string{"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64"}

// dropped are what a package ships that nothing in the image reads.
var dropped = []string{"usr/share/doc/", "usr/share/man/", "usr/share/info/", "usr/share/locale/", "usr/share/lintian/", "usr/share/bug/"}

// addDebian extracts the packages' files into the tree (through
// `dpkg-deb --fsys-tarfile`), writes each one's control file under
// /var/lib/dpkg/status.d/, the merged-/usr symlinks and the CA bundle.
func (t tree) addDebian(ctx context.Context, pkgs []Package) error {
	for dir, target := range merged {
		t.add(entry{Name: dir, Mode: 0o777, Link: target})
	}
	var certs []string
	for _, p := range pkgs {
		cmd := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", p.Deb)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("dpkg-deb: %w", err)
		}
		tr := tar.NewReader(out)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				_ = cmd.Wait()
				return fmt.Errorf("reading %s: %w", p.Deb, err)
			}
			name := clean(h.Name)
			if first, rest, ok := strings.Cut(name, "/"); ok && merged[first] != "" {
				name = merged[first] + "/" + rest
			} else if merged[name] != "" {
				continue // the directory itself is the symlink
			}
			if name == "" || droppedPath(name) {
				continue
			}
			mode := h.FileInfo().Mode()
			switch h.Typeflag {
			case tar.TypeDir:
				if _, ok := t[name]; !ok {
					t.add(entry{Name: name, Mode: mode.Perm(), Dir: true})
				}
			case tar.TypeSymlink:
				t.add(entry{Name: name, Mode: 0o777, Link: h.Linkname})
			case tar.TypeLink:
				target := clean(h.Linkname)
				if e, ok := t[target]; ok {
					e.Name = name
					t.add(e)
				}
			case tar.TypeReg:
				data, err := io.ReadAll(tr)
				if err != nil {
					_ = cmd.Wait()
					return fmt.Errorf("reading %s from %s: %w", name, p.Deb, err)
				}
				t.add(entry{Name: name, Mode: mode & (0o777 | os.ModeSetuid | os.ModeSetgid | os.ModeSticky), Data: data})
				if strings.HasPrefix(name, "usr/share/ca-certificates/") && strings.HasSuffix(name, ".crt") {
					certs = append(certs, name)
				}
			}
		}
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("dpkg-deb --fsys-tarfile %s: %w: %s", p.Deb, err, strings.TrimSpace(stderr.String()))
		}
		t.add(entry{Name: path.Join("var/lib/dpkg/status.d", p.Name), Mode: 0o644,
			Data: append(bytes.TrimRight(p.control, "\n"), "\nStatus: install ok installed\n"...)})
	}
	// What the maintainer scripts would have made at install time: the
	// shell's link and the CA bundle (update-ca-certificates).
	if _, ok := t["usr/bin/dash"]; ok {
		if _, ok := t["usr/bin/sh"]; !ok {
			t.add(entry{Name: "usr/bin/sh", Mode: 0o777, Link: "dash"})
		}
	}
	sort.Strings(certs)
	var bundle []byte
	for _, c := range certs {
		bundle = append(bundle, t[c].Data...)
		if len(bundle) > 0 && bundle[len(bundle)-1] != '\n' {
			bundle = append(bundle, '\n')
		}
	}
	if len(certs) > 0 {
		t.add(entry{Name: "etc/ssl/certs/ca-certificates.crt", Mode: 0o644, Data: bundle})
	}
	return nil
}

func droppedPath(name string) bool {
	for _, d := range dropped {
		if strings.HasPrefix(name+"/", d) {
			return true
		}
	}
	return false
}

func run(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = msg[:2000]
		}
		return nil, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return out, nil
}
