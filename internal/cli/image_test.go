package cli_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-sec/vigil/internal/cli"
	"github.com/vigil-sec/vigil/internal/schematest"
	"github.com/vigil-sec/vigil/scanner/image/imagetest"
)

func TestScanImageInEveryForm(t *testing.T) {
	t.Parallel()
	fx := imagetest.New(t)
	var debs []string
	for _, d := range imagetest.Debs {
		debs = append(debs, d.Name+" "+d.Version)
	}
	for _, ref := range []string{fx.Ref, "oci:" + fx.OCIDir, "archive:" + fx.Archive, "archive:" + fx.OCIArchive} {
		out := filepath.Join(t.TempDir(), "r.json")
		cdx := filepath.Join(t.TempDir(), "bom.json")
		code, _, _ := vigil(t, "scan", "-q", "-o", "json="+out, "-o", "cyclonedx-json="+cdx, ref)
		if code != cli.ExitPass {
			t.Errorf("%s: exit %d, want 0", ref, code)
		}
		r := readReport(t, out)
		if r.Target.Kind != "image" || r.Target.Digest != fx.Digest {
			t.Errorf("%s: target %+v, want digest %s", ref, r.Target, fx.Digest)
		}
		if len(r.Findings) != 0 {
			t.Errorf("%s: sast ran on an image: %+v", ref, r.Findings)
		}
		var got []string
		for _, c := range r.SBOM.Components {
			if c.Type == "deb" {
				got = append(got, c.Name+" "+c.Version)
			}
		}
		if diff := cmp.Diff(got, debs); diff != "" {
			t.Errorf("%s: deb packages (-got +want):\n%s", ref, diff)
		}
		if !slices.ContainsFunc(r.SBOM.Components, func(c component) bool { return c.Name == imagetest.GoDep }) {
			t.Errorf("%s: the Go binary's dependency %s is missing", ref, imagetest.GoDep)
		}
		b, err := os.ReadFile(cdx)
		if err != nil {
			t.Fatal(err)
		}
		schematest.Validate(t, schematest.CycloneDX16, b)
	}
}

type component = struct {
	Name, Version, Type string
	Licenses            []string
}

func TestScanImagePlatformAndLicenseGate(t *testing.T) {
	t.Parallel()
	fx := imagetest.New(t)
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	write(t, policy, "licenses:\n  deny: [GPL-3.0-or-later]\n")
	tests := []struct {
		platform   string
		wantCode   int
		wantDigest string
		wantCodes  []string
	}{
		{"", cli.ExitPass, fx.Digest, []string{"PASSED"}},
		{"linux/amd64", cli.ExitPass, fx.Digest, []string{"PASSED"}},
		// Only the arm64 image holds libatomic1, under GPL-3.0-or-later.
		{"linux/arm64", cli.ExitGateFailed, fx.ArmDigest, []string{"LICENSE_DENIED"}},
	}
	for _, tt := range tests {
		out := filepath.Join(t.TempDir(), "r.json")
		args := []string{"scan", "-q", "--policy", policy, "-o", "json=" + out}
		if tt.platform != "" {
			args = append(args, "--platform", tt.platform)
		}
		code, _, _ := vigil(t, append(args, fx.IndexRef)...)
		if code != tt.wantCode {
			t.Errorf("platform %q: exit %d, want %d", tt.platform, code, tt.wantCode)
		}
		r := readReport(t, out)
		if r.Target.Digest != tt.wantDigest {
			t.Errorf("platform %q: digest %s, want %s", tt.platform, r.Target.Digest, tt.wantDigest)
		}
		if diff := cmp.Diff(r.reasonCodes(), tt.wantCodes); diff != "" {
			t.Errorf("platform %q: reasons (-got +want):\n%s", tt.platform, diff)
		}
	}
	code, _, stderr := vigil(t, "scan", "-q", "--platform", "windows/s390x", fx.IndexRef)
	if code != cli.ExitUsage {
		t.Errorf("unknown platform: exit %d, want 2; stderr %s", code, stderr)
	}
}
