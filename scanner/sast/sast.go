package sast

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vigil-sec/vigil/internal/version"
	"github.com/vigil-sec/vigil/scanner"
)

// ID is the engine's ID, as --engines names it and as Finding.Engine says.
const ID = "sast"

const (
	// gosecModule is the module path of the embedded gosec.
	gosecModule = "github.com/securego/gosec/v2"
	// fallbackGosecVersion is reported when the binary carries no build
	// information (it should match go.mod's requirement).
	fallbackGosecVersion = "v2.30.0"
)

// Config says how the engine scans. The zero value, like a nil *Config,
// means the defaults, which equal the gosec CLI's: test files are not
// scanned, generated files are, and every rule and analyzer runs.
type Config struct {
	// Tests also scans _test.go files.
	Tests bool
	// ExcludeGenerated skips files with a "Code generated ... DO NOT EDIT."
	// header.
	ExcludeGenerated bool
	// Concurrency is how many packages are analysed at once; zero means
	// runtime.GOMAXPROCS(0).
	Concurrency int
	// Progress, when set, is called once with done=0 when the packages are
	// loaded and then after each package is analysed. Calls are serialised,
	// never happen after Run returns, and must not block for long.
	Progress func(done, total int)
	// Logger receives the engine's debug logs, gosec's own log lines
	// included; nil discards them.
	Logger *slog.Logger
	// Untrusted hardens the go commands the engine runs for code nobody
	// vouched for (the server's workers): the local Go toolchain only
	// (a go.mod or go.work asking for a newer one fails to load, and
	// nothing is downloaded or run instead), cgo off (no C compiler runs,
	// files that import "C" are left out, as in any CGO_ENABLED=0 build),
	// go.mod and go.sum read-only, no version control commands, and no
	// network while the code is compiled and type-checked: a module's
	// dependencies are first fetched through GOPROXY alone (`go mod
	// download`), then its packages are loaded with GOPROXY=off.
	Untrusted bool
	// TrimPath compiles the export data packages are typed from with
	// -trimpath. The go command keys its build cache by a package's folder
	// otherwise, so this pays where many checkouts of the same code in
	// different folders share one build cache (the server's workers).
	// Without it (the default) a scan reuses what the pipeline's own
	// `go build ./...` left in the build cache, where -trimpath would
	// compile every dependency again.
	TrimPath bool
}

// DefaultConfig returns the default configuration.
func DefaultConfig() *Config {
	return &Config{Concurrency: runtime.GOMAXPROCS(0)}
}

// Validate reports whether the configuration can be used.
func (c *Config) Validate() error {
	if c == nil {
		return nil
	}
	if c.Concurrency < 0 {
		return fmt.Errorf("sast config: concurrency is %d: want 0 (the default) or more", c.Concurrency)
	}
	return nil
}

// Engine returns the SAST engine. A nil cfg means DefaultConfig(); cfg is
// copied, so changing it afterwards has no effect on the engine.
func Engine(cfg *Config) scanner.Engine {
	c := DefaultConfig()
	if cfg != nil {
		c = new(Config)
		*c = *cfg
	}
	if c.Concurrency == 0 {
		c.Concurrency = runtime.GOMAXPROCS(0)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return scanner.Engine{
		ID:      ID,
		Version: gosecVersion(),
		Applies: applies,
		Scans:   "Go modules (a directory or commit with a go.mod or go.work at its root)",
		Run:     (&engine{cfg: c}).run,
		Config:  c.cacheConfig(),
		Codec:   scanner.JSONCodec,
	}
}

// applies reports whether t is a directory with a Go module or a Go
// workspace at its root.
func applies(t *scanner.Target) bool {
	if t == nil || (t.Kind != scanner.KindDir && t.Kind != scanner.KindGit) || t.Path == "" {
		return false
	}
	for _, name := range []string{"go.mod", "go.work"} {
		if fi, err := os.Stat(filepath.Join(t.Path, name)); err == nil && fi.Mode().IsRegular() {
			return true
		}
	}
	return false
}

// errNotApplicable is returned by Run for a target that applies says no to.
var errNotApplicable = errors.New("sast scans a directory with a go.mod or go.work at its root")

// gosecVersion is the version of gosec linked into the binary.
func gosecVersion() string { return version.Module(gosecModule, fallbackGosecVersion) }
