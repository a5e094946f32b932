package reports

import (
	"errors"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/ci"
)

func TestParseProject(t *testing.T) {
	t.Parallel()
	sha := strings.Repeat("ab", 20)
	for _, tc := range []struct {
		in   string
		want projectTarget
		bad  bool
	}{
		{in: "app", want: projectTarget{"app", ""}},
		{in: " app@" + strings.ToUpper(sha) + " ", want: projectTarget{"app", sha}},
		{in: "app@" + strings.Repeat("c", 64), want: projectTarget{"app", strings.Repeat("c", 64)}},
		{in: "app@abc123", bad: true},
		{in: "app@", bad: true},
		{in: "@" + sha, bad: true},
		{in: "", bad: true},
	} {
		got, err := parseProject(tc.in)
		if got != tc.want || (err != nil) != tc.bad || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("parseProject(%q) = %+v, %v; want %+v (error %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func TestParseImage(t *testing.T) {
	t.Parallel()
	d := "sha256:" + strings.Repeat("0f", 32)
	for _, tc := range []struct {
		in, ref string
		bad     bool
	}{
		{in: "registry.example.com/app:1.4@" + d, ref: "registry.example.com/app:1.4"},
		{in: "127.0.0.1:5000/vigil/app@" + d, ref: "127.0.0.1:5000/vigil/app"},
		{in: "alpine:3.20@" + d, ref: "index.docker.io/library/alpine:3.20"},
		{in: "alpine@" + d, ref: "index.docker.io/library/alpine"},
		{in: "registry.example.com/app:1.4", bad: true},
		{in: "registry.example.com/app@sha256:abc", bad: true},
		{in: "oci:/tmp/layout@" + d, bad: true},
		{in: "archive:/tmp/app.tar@" + d, bad: true},
	} {
		ref, digest, err := parseImage(tc.in)
		if (err != nil) != tc.bad || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("parseImage(%q): %v, want error %v", tc.in, err, tc.bad)
			continue
		}
		if !tc.bad && (ref != tc.ref || digest != d) {
			t.Errorf("parseImage(%q) = %q, %q; want %q, %q", tc.in, ref, digest, tc.ref, d)
		}
	}
}

// TestSettle: a release is ready when every scan has succeeded, failed
// (naming each failed scan) when one failed, else pending.
func TestSettle(t *testing.T) {
	t.Parallel()
	item := func(target string, st ci.ScanStatus, why string) ReleaseItem {
		return ReleaseItem{Kind: ci.KindCommit, Project: target, Commit: "c", ScanStatus: st, ScanError: why}
	}
	for _, tc := range []struct {
		items     []ReleaseItem
		want      ReleaseStatus
		wantError string
	}{
		{[]ReleaseItem{item("a", ci.ScanSucceeded, ""), item("b", ci.ScanSucceeded, "")}, ReleaseReady, ""},
		{[]ReleaseItem{item("a", ci.ScanSucceeded, ""), item("b", ci.ScanQueued, "")}, ReleasePending, ""},
		{[]ReleaseItem{item("a", ci.ScanRunning, ""), item("b", ci.ScanSucceeded, "")}, ReleasePending, ""},
		{[]ReleaseItem{item("a", ci.ScanFailed, "no such commit"), item("b", ci.ScanQueued, ""), item("c", ci.ScanFailed, "engine")},
			ReleaseFailed, "the scan of a@c failed: no such commit; the scan of c@c failed: engine"},
	} {
		r := StoredRelease{Items: tc.items}
		r.settle()
		if r.Status != tc.want || r.Error != tc.wantError {
			t.Errorf("%+v: %s %q, want %s %q", tc.items, r.Status, r.Error, tc.want, tc.wantError)
		}
	}
}
