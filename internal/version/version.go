// Package version reports Vigil's own version and the versions of the
// libraries it embeds, read from the binary's build information.
package version

import (
	"runtime/debug"
	"strings"
	"sync"

	"golang.org/x/mod/semver"
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

// Numeric is Vigil's version as tools that compare versions want it: a
// semantic version without the "v" ("1.4.0", "1.4.0-rc.1"). A build
// without one (a plain `go build`, a commit without a tag) is
// "0.0.0-" followed by what Vigil says ("0.0.0-devel",
// "0.0.0-1a690e1-dirty"), which sorts before every release.
func Numeric() string {
	v := Vigil()
	if semver.IsValid("v" + strings.TrimPrefix(v, "v")) {
		return strings.TrimPrefix(v, "v")
	}
	var b strings.Builder
	for _, r := range v {
		switch {
		case r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '-', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	pre := strings.Trim(b.String(), ".-")
	// Semantic versions allow no empty identifiers and no leading zeros
	// in numeric ones: make every identifier a word.
	ids := strings.Split(pre, ".")
	for i, id := range ids {
		if id == "" || (len(id) > 1 && id[0] == '0' && strings.Trim(id, "0123456789") == "") {
			ids[i] = "x" + id
		}
	}
	pre = strings.Join(ids, ".")
	if pre == "" {
		pre = "devel"
	}
	return "0.0.0-" + pre
}
