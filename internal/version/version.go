// Package version reports Vigil's own version and the versions of the
// libraries it embeds, read from the binary's build information.
package version

import (
	"runtime/debug"
	"sync"
)

// Version is Vigil's version, set at link time by the Makefile
// (-ldflags "-X github.com/vigil-sec/vigil/internal/version.Version=…").
var Version string

var buildInfo = sync.OnceValue(func() *debug.BuildInfo {
	bi, _ := debug.ReadBuildInfo()
	return bi
})

// Vigil returns Vigil's version: the link-time Version, else the main
// module's version from the build information, else "devel".
func Vigil() string {
	if Version != "" {
		return Version
	}
	if bi := buildInfo(); bi != nil && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// Module returns the version of the module at path that this binary was
// built with (following replace directives), or fallback when the build
// information does not list it (as in some test binaries).
func Module(path, fallback string) string {
	bi := buildInfo()
	if bi == nil {
		return fallback
	}
	for _, d := range bi.Deps {
		if d.Path != path {
			continue
		}
		if d.Replace != nil && d.Replace.Version != "" {
			return d.Replace.Version
		}
		if d.Version != "" && d.Version != "(devel)" {
			return d.Version
		}
	}
	return fallback
}

// Go returns the Go version the binary was built with.
func Go() string {
	if bi := buildInfo(); bi != nil {
		return bi.GoVersion
	}
	return ""
}
