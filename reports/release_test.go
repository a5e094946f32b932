package reports_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-sec/vigil/reports"
	"github.com/vigil-sec/vigil/scanner"
)

func TestSortedScans(t *testing.T) {
	t.Parallel()
	res := &scanner.Result{}
	rel := &reports.Release{Scans: []reports.ReleaseScan{
		{Image: "reg/b:1", Digest: "sha256:2", Result: res},
		{Project: "web", Commit: "b", Result: res},
		{Image: "reg/a:1", Digest: "sha256:1", Result: res},
		{Project: "api", Commit: "c", Result: res},
		{Project: "web", Commit: "a", Result: res},
	}}
	var got []string
	for _, s := range rel.SortedScans() {
		got = append(got, s.Name()+"@"+s.Commit+s.Digest)
	}
	want := []string{"api@c", "web@a", "web@b", "reg/a:1@sha256:1", "reg/b:1@sha256:2"}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("order (-got +want):\n%s", diff)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	valid := func() *reports.Release {
		return &reports.Release{
			ProductID: "p", Version: "1", Created: time.Unix(1, 0),
			Scans: []reports.ReleaseScan{
				{Project: "web", Commit: "a", Result: &scanner.Result{}},
				{Image: "reg/app:1", Digest: "sha256:1", Result: &scanner.Result{}},
			},
		}
	}
	if err := valid().Validate(); err != nil {
		t.Fatalf("a valid release: %v", err)
	}
	for name, tc := range map[string]struct {
		edit func(*reports.Release)
		want string
	}{
		"no version":     {func(r *reports.Release) { r.Version = " " }, "no version"},
		"both kinds":     {func(r *reports.Release) { r.Scans[1].Project = "web" }, "scans[1] names both"},
		"neither":        {func(r *reports.Release) { r.Scans[0].Commit = "" }, "scans[0] names neither"},
		"tag, no digest": {func(r *reports.Release) { r.Scans[1].Digest = "v1" }, "has no sha256 digest"},
		"no result":      {func(r *reports.Release) { r.Scans[0].Result = nil }, "scans[0] (web) has no result"},
		"the same twice": {func(r *reports.Release) { r.Scans = append(r.Scans, r.Scans[0]) }, "project web@a is in the release twice"},
		"every problem":  {func(r *reports.Release) { r.ProductID, r.Created = "", time.Time{} }, "no product ID; no creation time"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rel := valid()
			tc.edit(rel)
			err := rel.Validate()
			if !errors.Is(err, scanner.ErrUsage) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want a usage error saying %q", err, tc.want)
			}
		})
	}
	if err := (&reports.Recipient{TenantName: "Acme"}).Validate(); !errors.Is(err, scanner.ErrUsage) {
		t.Errorf("a recipient without a ticket: %v", err)
	}
}
