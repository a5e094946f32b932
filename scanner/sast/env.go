package sast

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/tools/go/packages"
)

// maxReason bounds the go command's words kept in an Unanalysed reason.
const maxReason = 4 << 10

// phase is which step of a module's load a go command serves.
type phase int

const (
	// phaseDownload fetches the module's dependencies (untrusted only).
	phaseDownload phase = iota
	// phaseBuild lists, compiles and type-checks the packages.
	phaseBuild
)

// untrustedEnv is what an untrusted module's go commands run with, in
// every phase: the local toolchain whatever go.mod or go.work ask for (a
// newer one is refused, never downloaded and run), no cgo (no C compiler
// runs on the repository's C code or #cgo flags), go.mod and go.sum as
// they are, no version control command for modules and no VCS stamping.
var untrustedEnv = []string{
	"GOTOOLCHAIN=local",
	"CGO_ENABLED=0",
	"GOFLAGS=-mod=readonly -buildvcs=false",
	"GOVCS=*:off",
}

// env is the environment of the go command for module m in phase ph: the
// process's own, the module's workspace, and in untrusted mode the
// settings above, and no network at all once the dependencies are
// downloaded (GOPROXY=off): compiling and type-checking the repository's
// code happens offline.
func (e *engine) env(m module, ph phase) []string {
	env := append(os.Environ(), "GOWORK="+m.gowork)
	if e.cfg.Untrusted {
		env = append(env, untrustedEnv...)
		if ph == phaseBuild {
			env = append(env, "GOPROXY=off")
		}
	}
	return env
}

// download fetches what module m needs through the module proxy before the
// offline build, in untrusted mode; otherwise the go command fetches what
// it needs as it loads the packages.
func (e *engine) download(ctx context.Context, m module) error {
	if !e.cfg.Untrusted {
		return nil
	}
	cmd := exec.CommandContext(ctx, "go", "mod", "download")
	cmd.Dir = m.dir
	cmd.Env = e.env(m, phaseDownload)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("go mod download: %s", clipReason(msg))
	}
	return nil
}

// goError turns a failed packages.Load into the reason a module was not
// analysed: the go command's own words, bounded.
func goError(err error) error {
	return errors.New(clipReason(strings.TrimSpace(err.Error())))
}

func clipReason(s string) string {
	if len(s) > maxReason {
		s = s[:maxReason] + "…"
	}
	return s
}

// owned keeps the packages that belong to module m: in a workspace, "./..."
// also matches the packages of the workspace's modules nested under m,
// which are analysed with their own module.
func (l *layout) owned(m module, pkgs []*packages.Package) []*packages.Package {
	if m.gowork == "off" {
		return pkgs
	}
	out := pkgs[:0:0]
	for _, p := range pkgs {
		if l.owner(packageDir(p)) == m.dir {
			out = append(out, p)
		}
	}
	return out
}

// owner returns the folder of the module whose tree holds dir: the
// deepest module folder at or above it.
func (l *layout) owner(dir string) string {
	best := ""
	for _, m := range l.modules {
		if (dir == m.dir || isInside(m.dir, dir)) && len(m.dir) > len(best) {
			best = m.dir
		}
	}
	return best
}

// packageDir is the folder of a package's files.
func packageDir(p *packages.Package) string {
	if p.Dir != "" {
		return filepath.Clean(p.Dir)
	}
	for _, files := range [][]string{p.GoFiles, p.CompiledGoFiles, p.OtherFiles} {
		if len(files) > 0 {
			return filepath.Dir(files[0])
		}
	}
	return ""
}
