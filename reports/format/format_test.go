package format_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/CycloneDX/cyclonedx-go"

	"github.com/vigil-sec/vigil/internal/schematest"
	"github.com/vigil-sec/vigil/reports"
	"github.com/vigil-sec/vigil/reports/format"
	"github.com/vigil-sec/vigil/reports/reporttest"
	"github.com/vigil-sec/vigil/scanner"
)

// writers are the three documents, by the schema each must satisfy.
var writers = []struct {
	name   string
	schema string
	write  func(io.Writer, *reports.Release) error
}{
	{"cyclonedx", schematest.CycloneDX16, format.WriteCycloneDX},
	{"spdx", schematest.SPDX23, format.WriteSPDX},
	{"sarif", schematest.SARIF210, format.WriteSARIF},
}

// write writes rel twice with w, checks that both are the same bytes and
// valid against schema, and returns them.
func write(t *testing.T, w func(io.Writer, *reports.Release) error, schema string, rel *reports.Release) []byte {
	t.Helper()
	var a, b bytes.Buffer
	if err := w(&a, rel); err != nil {
		t.Fatal(err)
	}
	if err := w(&b, rel); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two writes of the same release differ")
	}
	schematest.Validate(t, schema, a.Bytes())
	return a.Bytes()
}

func TestRelease(t *testing.T) {
	t.Parallel()
	rel := reporttest.Release(t)
	t.Log(reporttest.Describe(rel))
	repo, img := rel.SortedScans()[0], rel.SortedScans()[1]

	t.Run("cyclonedx", func(t *testing.T) {
		t.Parallel()
		doc := write(t, format.WriteCycloneDX, schematest.CycloneDX16, rel)
		var bom cyclonedx.BOM
		if err := cyclonedx.NewBOMDecoder(bytes.NewReader(doc), cyclonedx.BOMFileFormatJSON).Decode(&bom); err != nil {
			t.Fatal(err)
		}
		if bom.SpecVersion != cyclonedx.SpecVersion1_6 || !strings.HasPrefix(bom.SerialNumber, "urn:uuid:") {
			t.Errorf("specVersion %v, serialNumber %q", bom.SpecVersion, bom.SerialNumber)
		}
		m := bom.Metadata
		if m.Timestamp != "2026-11-30T12:00:00Z" {
			t.Errorf("metadata.timestamp = %q, want the release's creation time", m.Timestamp)
		}
		if m.Component.Name != reporttest.ProductName || m.Component.Version != reporttest.Version {
			t.Errorf("metadata.component = %s %s", m.Component.Name, m.Component.Version)
		}
		var toolNames []string
		for _, c := range *m.Tools.Components {
			toolNames = append(toolNames, c.Name)
		}
		if !slices.Equal(toolNames, []string{"sast", "sbom", "vigil"}) {
			t.Errorf("metadata.tools = %q", toolNames)
		}

		comps := *bom.Components
		if len(comps) != 2 {
			t.Fatalf("%d top-level components, want the repository and the image", len(comps))
		}
		if c := comps[0]; c.Type != cyclonedx.ComponentTypeApplication || c.Name != reporttest.Project || c.Version != repo.Commit ||
			c.ExternalReferences == nil || (*c.ExternalReferences)[0].URL != reporttest.RepoURL {
			t.Errorf("repository component = %+v", c)
		}
		if c := comps[1]; c.Type != cyclonedx.ComponentTypeContainer || c.Version != img.Digest ||
			c.Hashes == nil || "sha256:"+(*c.Hashes)[0].Value != img.Digest || !strings.HasPrefix(c.PackageURL, "pkg:oci/fixture@sha256%3A") {
			t.Errorf("image component = %+v", c)
		}
		for i, s := range []*reports.ReleaseScan{repo, img} {
			if comps[i].Components == nil || len(*comps[i].Components) != len(s.Components()) {
				t.Errorf("%s: nested components %v, want its %d packages", s.Name(), comps[i].Components, len(s.Components()))
			}
		}
		leftPad := nested(comps[0], "left-pad")
		if leftPad == nil || leftPad.Licenses == nil || (*leftPad.Licenses)[0].Expression != reporttest.DeniedLicense {
			t.Errorf("left-pad = %+v, want its WTFPL license as an expression", leftPad)
		}

		// Every bom-ref is unique and in dependencies; the product depends
		// on both targets, each target on its packages.
		refs := map[string]bool{m.Component.BOMRef: true}
		for _, c := range comps {
			refs[c.BOMRef] = true
			for _, n := range *c.Components {
				if refs[n.BOMRef] {
					t.Errorf("bom-ref %q twice", n.BOMRef)
				}
				refs[n.BOMRef] = true
			}
		}
		deps := map[string][]string{}
		for _, d := range *bom.Dependencies {
			if d.Dependencies != nil {
				deps[d.Ref] = *d.Dependencies
			} else {
				deps[d.Ref] = nil
			}
		}
		if len(deps) != len(refs) {
			t.Errorf("%d dependencies entries for %d bom-refs", len(deps), len(refs))
		}
		if got := deps[m.Component.BOMRef]; !slices.Equal(got, []string{comps[0].BOMRef, comps[1].BOMRef}) {
			t.Errorf("the product depends on %q", got)
		}
		if got := deps[comps[0].BOMRef]; !slices.Contains(got, leftPad.BOMRef) {
			t.Errorf("the repository depends on %q, which lacks left-pad", got)
		}
	})

	t.Run("spdx", func(t *testing.T) {
		t.Parallel()
		doc := write(t, format.WriteSPDX, schematest.SPDX23, rel)
		var d struct {
			SPDXVersion  string `json:"spdxVersion"`
			Namespace    string `json:"documentNamespace"`
			CreationInfo struct {
				Created  string
				Creators []string
			} `json:"creationInfo"`
			Packages []struct {
				SPDXID          string `json:"SPDXID"`
				Name            string
				VersionInfo     string                           `json:"versionInfo"`
				LicenseDeclared string                           `json:"licenseDeclared"`
				Purpose         string                           `json:"primaryPackagePurpose"`
				Checksums       []struct{ ChecksumValue string } `json:"checksums"`
			}
			Relationships []struct {
				A    string `json:"spdxElementId"`
				B    string `json:"relatedSpdxElement"`
				Type string `json:"relationshipType"`
			}
		}
		if err := json.Unmarshal(doc, &d); err != nil {
			t.Fatal(err)
		}
		if d.SPDXVersion != "SPDX-2.3" || d.CreationInfo.Created != "2026-11-30T12:00:00Z" || !strings.Contains(d.Namespace, reporttest.ProductID) {
			t.Errorf("version %s, created %s, namespace %s", d.SPDXVersion, d.CreationInfo.Created, d.Namespace)
		}
		if want := 3 + len(repo.Components()) + len(img.Components()); len(d.Packages) != want {
			t.Errorf("%d packages, want %d (product, 2 targets, their packages)", len(d.Packages), want)
		}
		ids := map[string]string{}
		for _, p := range d.Packages {
			if ids[p.SPDXID] != "" {
				t.Errorf("SPDXID %s twice", p.SPDXID)
			}
			ids[p.SPDXID] = p.Name
		}
		if p := d.Packages[0]; p.Name != reporttest.ProductName || p.Purpose != "APPLICATION" {
			t.Errorf("first package %+v, want the product", p)
		}
		if p := d.Packages[1+1+len(repo.Components())]; p.Purpose != "CONTAINER" || "sha256:"+p.Checksums[0].ChecksumValue != img.Digest {
			t.Errorf("image package %+v", p)
		}
		if r := d.Relationships[0]; r.A != "SPDXRef-DOCUMENT" || r.Type != "DESCRIBES" || r.B != d.Packages[0].SPDXID {
			t.Errorf("first relationship %+v", r)
		}
		contained := map[string]bool{}
		for _, r := range d.Relationships[1:] {
			if r.Type != "CONTAINS" || ids[r.A] == "" || ids[r.B] == "" {
				t.Errorf("relationship %+v", r)
			}
			contained[r.B] = true
		}
		if len(contained) != len(d.Packages)-1 {
			t.Errorf("%d packages contained, want every one but the product (%d)", len(contained), len(d.Packages)-1)
		}
	})

	t.Run("sarif", func(t *testing.T) {
		t.Parallel()
		doc := write(t, format.WriteSARIF, schematest.SARIF210, rel)
		var d struct {
			Runs []struct {
				AutomationDetails struct{ ID string } `json:"automationDetails"`
				Provenance        []struct {
					RepositoryURI string `json:"repositoryUri"`
					RevisionID    string `json:"revisionId"`
				} `json:"versionControlProvenance"`
				Invocations []struct {
					Start string `json:"startTimeUtc"`
					End   string `json:"endTimeUtc"`
					OK    bool   `json:"executionSuccessful"`
				}
				Results []struct {
					RuleID       string `json:"ruleId"`
					Suppressions []struct {
						Kind       string
						Properties map[string]string
					}
				}
				Properties map[string]json.RawMessage
			}
		}
		if err := json.Unmarshal(doc, &d); err != nil {
			t.Fatal(err)
		}
		if len(d.Runs) != 1 {
			t.Fatalf("%d runs, want one for the repository (the image has no findings)", len(d.Runs))
		}
		run := d.Runs[0]
		if want := "vigil/release/web/" + repo.Commit; run.AutomationDetails.ID != want {
			t.Errorf("automationDetails.id = %q, want %q", run.AutomationDetails.ID, want)
		}
		if len(run.Provenance) != 1 || run.Provenance[0].RepositoryURI != reporttest.RepoURL || run.Provenance[0].RevisionID != repo.Commit {
			t.Errorf("versionControlProvenance = %+v", run.Provenance)
		}
		if len(run.Invocations) != 1 || run.Invocations[0].Start != repo.Result.StartedAt.UTC().Format(time.RFC3339) || !run.Invocations[0].OK {
			t.Errorf("invocations = %+v", run.Invocations)
		}
		if len(run.Results) != len(repo.Result.Findings) {
			t.Errorf("%d results for %d findings", len(run.Results), len(repo.Result.Findings))
		}
		waived := 0
		for _, r := range run.Results {
			for _, s := range r.Suppressions {
				if s.Kind == "external" && s.Properties["owner"] == "alice@example.com" && r.RuleID == "G404" {
					waived++
				}
			}
		}
		if waived != 1 {
			t.Errorf("%d G404 results waived by alice, want 1", waived)
		}
		var register []struct {
			Rule, Owner, Reason, Expires string
			Active                       bool
		}
		if err := json.Unmarshal(run.Properties[format.WaiversProperty], &register); err != nil {
			t.Fatal(err)
		}
		if len(register) != 2 || !register[0].Active || register[1].Owner != "bob@example.com" || register[1].Expires != "2026-10-30" || register[1].Active {
			t.Errorf("waiver register = %+v, want both waivers, the expired one with its expiry", register)
		}
	})
}

func nested(c cyclonedx.Component, name string) *cyclonedx.Component {
	if c.Components == nil {
		return nil
	}
	for i, n := range *c.Components {
		if n.Name == name {
			return &(*c.Components)[i]
		}
	}
	return nil
}

// TestEdgeCases writes releases the fixture does not cover: no findings,
// no SBOM, an image only, duplicate packages and free-text licenses.
func TestEdgeCases(t *testing.T) {
	t.Parallel()
	cases := map[string]func(*reports.Release){
		"as built":    func(*reports.Release) {},
		"no findings": func(r *reports.Release) { r.Scans[1].Result.Findings = nil },
		"no SBOM": func(r *reports.Release) {
			for i := range r.Scans {
				r.Scans[i].Result.SBOM = nil
			}
		},
		"image only": func(r *reports.Release) { r.Scans = r.Scans[:1] },
		"no scans":   func(r *reports.Release) { r.Scans = nil },
	}
	for name, edit := range cases {
		for _, w := range writers {
			t.Run(name+"/"+w.name, func(t *testing.T) {
				t.Parallel()
				rel := reporttest.Small()
				edit(rel)
				write(t, w.write, w.schema, rel)
			})
		}
	}

	t.Run("licenses and remotes", func(t *testing.T) {
		t.Parallel()
		rel := reporttest.Small()
		var cdx, spdx bytes.Buffer
		if err := format.WriteCycloneDX(&cdx, rel); err != nil {
			t.Fatal(err)
		}
		if err := format.WriteSPDX(&spdx, rel); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`"expression": "Zlib"`, `"name": "Apache 2.0"`, `"name": "MIT OR GPL-2.0-only"`, `#2"`,
			`"url": "ssh://git@git.example.com/team/api.git"`} {
			if !strings.Contains(cdx.String(), want) {
				t.Errorf("CycloneDX lacks %s", want)
			}
		}
		for _, want := range []string{
			`"licenseDeclared": "LicenseRef-Apache-2.0 AND (MIT OR GPL-2.0-only)"`,
			`"licenseDeclared": "LicenseRef-Apache-2.0-2"`,
			`"licenseId": "LicenseRef-Apache-2.0"`, `"extractedText": "Apache_2.0"`,
			`"downloadLocation": "git+ssh://git@git.example.com/team/api.git@` + strings.Repeat("a", 40) + `"`,
		} {
			if !strings.Contains(spdx.String(), want) {
				t.Errorf("SPDX lacks %s", want)
			}
		}
	})
}

func TestInvalidRelease(t *testing.T) {
	t.Parallel()
	for name, edit := range map[string]func(*reports.Release){
		"no product":       func(r *reports.Release) { r.ProductID = "" },
		"no creation time": func(r *reports.Release) { r.Created = time.Time{} },
		"image without digest": func(r *reports.Release) {
			r.Scans[0].Digest = ""
		},
		"twice":     func(r *reports.Release) { r.Scans = append(r.Scans, r.Scans[1]) },
		"no result": func(r *reports.Release) { r.Scans[1].Result = nil },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rel := reporttest.Small()
			edit(rel)
			for _, w := range writers {
				if err := w.write(io.Discard, rel); !errors.Is(err, scanner.ErrUsage) {
					t.Errorf("%s: %v, want a usage error", w.name, err)
				}
			}
		})
	}
}
