// Package tooltest finds the command-line tools that tests run as
// independent implementations of what Vigil does (openssl checking a
// report signature, for one).
package tooltest

import (
	"os"
	"os/exec"
	"testing"
)

// Need returns the path of tool, which the Debian package pkg installs.
// A missing tool skips the test, except in CI (the CI environment
// variable set), where .ci/run installs it and its absence fails the test.
func Need(t testing.TB, tool, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found: .ci/run should have installed %s", tool, pkg)
		}
		t.Skipf("%s not found: install %s (apt-get install -y %s)", tool, pkg, pkg)
	}
	return path
}
