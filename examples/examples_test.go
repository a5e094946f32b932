// Package examples tests the CI and Kubernetes examples users copy: the
// GitHub Actions workflow is linted by actionlint and the GitLab pipeline
// checked against GitLab's keywords, and both have their shell steps run
// as written against a real vigil on real projects; the Kubernetes
// manifests are decoded strictly into the Kubernetes API's own types, and
// vigil serve is started with the Deployment's arguments and answers the
// admission webhook's path, port and CA as the ValidatingWebhookConfiguration
// names them.
//
// It is a module of its own so that the linters and Kubernetes types it
// needs stay out of Vigil's go.mod.
package examples

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var vigilBin struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// vigil builds this checkout's vigil once per test run.
func vigil(t *testing.T) string {
	t.Helper()
	vigilBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "vigil-examples-")
		if err != nil {
			vigilBin.err = err
			return
		}
		vigilBin.path = filepath.Join(dir, "vigil")
		cmd := exec.Command("go", "build", "-o", vigilBin.path, "./cmd/vigil")
		cmd.Dir = ".."
		vigilBin.out, vigilBin.err = cmd.CombinedOutput()
	})
	if vigilBin.err != nil {
		t.Fatalf("building vigil: %v\n%s", vigilBin.err, vigilBin.out)
	}
	return vigilBin.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if vigilBin.path != "" {
		os.RemoveAll(filepath.Dir(vigilBin.path))
	}
	os.Exit(code)
}

// project writes a Go module; with planted, it has a finding the default
// policy fails on (G402, high severity).
func project(t *testing.T, planted bool) string {
	t.Helper()
	dir := t.TempDir()
	body := "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }\n"
	if planted {
		body = "package main\n\nimport (\n\t\"crypto/tls\"\n\t\"fmt\"\n)\n\nfunc main() {\n\tcfg := &tls.Config{InsecureSkipVerify: true}\n\tfmt.Println(cfg.MinVersion)\n}\n"
	}
	write(t, filepath.Join(dir, "main.go"), body)
	write(t, filepath.Join(dir, "go.mod"), "module example.com/app\n\ngo 1.26\n")
	return dir
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// step is one shell step of a CI example, as written there.
type step struct {
	name   string
	script string
}

// runSteps runs the steps in dir with bash, as the CI systems run them
// (bash -e), with vigil on the PATH in place of its install step (the
// commit under test is not on the module proxy) and env added; it stops at
// the first failing step and returns its index and exit code (-1, 0 when
// all passed).
func runSteps(t *testing.T, dir string, steps []step, env []string) (int, int, string) {
	t.Helper()
	bin := filepath.Dir(vigil(t))
	var log bytes.Buffer
	for i, s := range steps {
		script := s.script
		if strings.Contains(script, "go install") && strings.Contains(script, "github.com/vigil-sec/vigil/cmd/vigil@") {
			script = "command -v vigil >/dev/null"
		}
		cmd := exec.Command("bash", "-e", "-o", "pipefail", "-c", script)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
		cmd.Env = append(cmd.Env, env...)
		cmd.Stdout, cmd.Stderr = &log, &log
		err := cmd.Run()
		if err != nil {
			code := -2
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			return i, code, log.String()
		}
	}
	return -1, 0, log.String()
}
