package format

import (
	"cmp"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"

	"github.com/vigil-sec/vigil/internal/version"
	"github.com/vigil-sec/vigil/reports"
	"github.com/vigil-sec/vigil/scanner"
)

const noAssertion = "NOASSERTION"

// WriteSPDX writes the release's SBOM as one SPDX 2.3 JSON document (see
// the package documentation for its shape).
func WriteSPDX(w io.Writer, rel *reports.Release) error {
	if err := rel.Validate(); err != nil {
		return err
	}
	if err := spdxjson.Write(spdxDocument(rel, version.Vigil()), w, spdxjson.Indent("  ")); err != nil {
		return fmt.Errorf("writing SPDX: %w", err)
	}
	return nil
}

func spdxDocument(rel *reports.Release, vigilVersion string) *spdx.Document {
	creators := []common.Creator{{CreatorType: "Organization", Creator: "Vigil"}}
	for _, t := range tools(rel, vigilVersion) {
		creators = append(creators, common.Creator{CreatorType: "Tool", Creator: t[0] + "-" + t[1]})
	}
	doc := &spdx.Document{
		SPDXVersion:    spdx.Version,
		DataLicense:    spdx.DataLicense,
		SPDXIdentifier: "DOCUMENT",
		DocumentName:   cmp.Or(rel.ProductName, rel.ProductID) + " " + rel.Version,
		DocumentNamespace: homepage + "/spdx/" + url.PathEscape(rel.ProductID) + "/" +
			url.PathEscape(rel.Version) + "-" + releaseUUID(rel).String(),
		CreationInfo: &spdx.CreationInfo{
			Creators: creators,
			Created:  rel.Created.UTC().Format(time.RFC3339),
		},
	}
	lic := &spdxLicenses{refs: map[string]string{}}

	product := &spdx.Package{
		PackageName:             cmp.Or(rel.ProductName, rel.ProductID),
		PackageSPDXIdentifier:   "Product",
		PackageVersion:          rel.Version,
		PackageDownloadLocation: noAssertion,
		PackageLicenseConcluded: noAssertion,
		PackageLicenseDeclared:  noAssertion,
		PackageCopyrightText:    noAssertion,
		PrimaryPackagePurpose:   "APPLICATION",
		PackageComment:          "Vigil product ID " + rel.ProductID,
		ReleaseDate:             rel.Created.UTC().Format(time.RFC3339),
	}
	doc.Packages = []*spdx.Package{product}
	doc.Relationships = []*spdx.Relationship{relationship("DOCUMENT", product.PackageSPDXIdentifier, "DESCRIBES")}

	for i, s := range rel.SortedScans() {
		target := targetPackage(s, i+1)
		doc.Packages = append(doc.Packages, target)
		doc.Relationships = append(doc.Relationships, relationship(product.PackageSPDXIdentifier, target.PackageSPDXIdentifier, "CONTAINS"))
		for j, c := range s.Components() {
			p := componentPackage(c, lic)
			p.PackageSPDXIdentifier = common.ElementID(fmt.Sprintf("Package-%d-%d", i+1, j+1))
			doc.Packages = append(doc.Packages, p)
			doc.Relationships = append(doc.Relationships, relationship(target.PackageSPDXIdentifier, p.PackageSPDXIdentifier, "CONTAINS"))
		}
	}
	doc.OtherLicenses = lic.others
	return doc
}

func relationship(a, b common.ElementID, kind string) *spdx.Relationship {
	return &spdx.Relationship{
		RefA:         common.DocElementID{ElementRefID: a},
		RefB:         common.DocElementID{ElementRefID: b},
		Relationship: kind,
	}
}

// targetPackage describes a scanned repository or image; n numbers it in
// the release.
func targetPackage(s *reports.ReleaseScan, n int) *spdx.Package {
	p := &spdx.Package{
		PackageDownloadLocation: noAssertion,
		PackageLicenseConcluded: noAssertion,
		PackageLicenseDeclared:  noAssertion,
		PackageCopyrightText:    noAssertion,
	}
	var facts []string
	if s.IsImage() {
		p.PackageSPDXIdentifier = common.ElementID("Image-" + strconv.Itoa(n))
		p.PackageName = imageName(s)
		p.PackageVersion = s.Digest
		p.PrimaryPackagePurpose = "CONTAINER"
		if alg, hex, ok := strings.Cut(s.Digest, ":"); ok && alg == "sha256" {
			p.PackageChecksums = []common.Checksum{{Algorithm: common.SHA256, Value: hex}}
		}
		if purl := imagePURL(s); purl != "" {
			p.PackageExternalReferences = []*spdx.PackageExternalReference{{Category: "PACKAGE-MANAGER", RefType: "purl", Locator: purl}}
		}
		facts = append(facts, "image "+s.Image)
	} else {
		p.PackageSPDXIdentifier = common.ElementID("Repository-" + strconv.Itoa(n))
		p.PackageName = s.Project
		p.PackageVersion = s.Commit
		p.PrimaryPackagePurpose = "SOURCE"
		if uri := repositoryURI(s); uri != "" {
			p.PackageDownloadLocation = "git+" + uri + "@" + s.Commit
		}
		facts = append(facts, "repository "+s.Repository+" at commit "+s.Commit)
	}
	if s.PolicyVersion != "" {
		facts = append(facts, "policy version "+s.PolicyVersion)
	}
	if r := s.Result; r != nil {
		facts = append(facts, "scanned from "+r.StartedAt.UTC().Format(time.RFC3339)+" to "+r.FinishedAt.UTC().Format(time.RFC3339))
		for _, e := range r.Engines {
			facts = append(facts, "engine "+e.ID+" "+e.Version)
		}
	}
	p.PackageComment = strings.Join(facts, "; ")
	return p
}

// componentPackage describes one package found by the sbom engine.
func componentPackage(c scanner.Component, lic *spdxLicenses) *spdx.Package {
	p := &spdx.Package{
		PackageName:             cmp.Or(c.Name, "unnamed"),
		PackageVersion:          c.Version,
		PackageDownloadLocation: noAssertion,
		PackageLicenseConcluded: noAssertion,
		PackageLicenseDeclared:  lic.declared(c.Licenses),
		PackageCopyrightText:    noAssertion,
		PrimaryPackagePurpose:   "LIBRARY",
	}
	if c.PURL != "" {
		p.PackageExternalReferences = []*spdx.PackageExternalReference{{Category: "PACKAGE-MANAGER", RefType: "purl", Locator: c.PURL}}
	}
	var facts []string
	if c.Type != "" {
		facts = append(facts, "type "+c.Type)
	}
	if len(c.Locations) > 0 {
		facts = append(facts, "found at "+strings.Join(c.Locations, ", "))
	}
	if c.Layer != "" {
		facts = append(facts, "layer "+c.Layer)
	}
	p.PackageComment = strings.Join(facts, "; ")
	return p
}

// spdxLicenses turns declared licenses into SPDX expressions, giving each
// free-text license a LicenseRef- with its text as extracted licensing
// info.
type spdxLicenses struct {
	refs   map[string]string // LicenseRef- ID -> the text it stands for
	others []*spdx.OtherLicense
}

// declared returns the licenseDeclared of a package with these declared
// licenses: their SPDX expression, NOASSERTION when there are none.
func (l *spdxLicenses) declared(licenses []string) string {
	if len(licenses) == 0 {
		return noAssertion
	}
	if expr, ok := licenseExpression(licenses); ok {
		for _, id := range strings.FieldsFunc(expr, func(r rune) bool { return r == ' ' || r == '(' || r == ')' }) {
			if strings.HasPrefix(id, "LicenseRef-") {
				l.ref(id, id)
			}
		}
		return expr
	}
	parts := make([]string, len(licenses))
	for i, text := range licenses {
		if expr, ok := licenseExpression([]string{text}); ok {
			parts[i] = expr
			if strings.ContainsRune(expr, ' ') {
				parts[i] = "(" + expr + ")"
			}
			continue
		}
		parts[i] = l.ref(licenseRef(text), text)
	}
	return strings.Join(parts, " AND ")
}

// ref records that id stands for text and returns id, or another ID when
// id already stands for another text.
func (l *spdxLicenses) ref(id, text string) string {
	for n, base := 2, id; ; n++ {
		have, ok := l.refs[id]
		if !ok {
			l.refs[id] = text
			l.others = append(l.others, &spdx.OtherLicense{LicenseIdentifier: id, ExtractedText: text, LicenseName: text})
			return id
		}
		if have == text {
			return id
		}
		id = base + "-" + strconv.Itoa(n)
	}
}
