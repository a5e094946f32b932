package ci

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/scanner"
)

func TestReadRepoPolicy(t *testing.T) {
	t.Parallel()
	outside := filepath.Join(t.TempDir(), "outside.yaml")
	if err := os.WriteFile(outside, []byte("rules: {exclude: [G404]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		make    func(t *testing.T, p string)
		present bool
		wantErr string // in the parse error; "" for none
	}{
		{"missing", func(*testing.T, string) {}, false, ""},
		{"regular", func(t *testing.T, p string) { write(t, p, "fail_on: {severity: low}\n") }, true, ""},
		{"symlink out of the checkout", func(t *testing.T, p string) {
			if err := os.Symlink(outside, p); err != nil {
				t.Fatal(err)
			}
		}, true, "symbolic link"},
		{"directory", func(t *testing.T, p string) {
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}, true, "not a regular file"},
		{"too large", func(t *testing.T, p string) { write(t, p, "#"+strings.Repeat("x", MaxPolicySize)+"\n") }, true, "larger than"},
		{"malformed", func(t *testing.T, p string) { write(t, p, "fail_on: [\n") }, true, "invalid YAML"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			tt.make(t, filepath.Join(root, RepoPolicyFile))
			rp := readRepoPolicy(root)
			if rp.Present != tt.present {
				t.Errorf("present = %v, want %v", rp.Present, tt.present)
			}
			pol, err := rp.parse("abc123")
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("parse: %v", err)
			case tt.wantErr != "":
				var pe *PolicyError
				if !errors.As(err, &pe) || !errors.Is(err, scanner.ErrUsage) || !strings.Contains(err.Error(), tt.wantErr) || pe.File != ".vigil.yaml at abc123" {
					t.Errorf("parse error %v, want a PolicyError on .vigil.yaml at abc123 saying %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "G404") {
					t.Errorf("the error shows what the link points at: %v", err)
				}
			case tt.present && (pol == nil || pol.FailOn.Severity != scanner.LevelLow || len(rp.SHA256) != 64):
				t.Errorf("policy %+v, sha256 %q", pol, rp.SHA256)
			case !tt.present && pol != nil:
				t.Errorf("policy %+v for no file", pol)
			}
		})
	}
}

func write(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
