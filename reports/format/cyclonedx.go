package format

import (
	"cmp"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/CycloneDX/cyclonedx-go"

	"github.com/vigil-sec/vigil/internal/version"
	"github.com/vigil-sec/vigil/reports"
	"github.com/vigil-sec/vigil/scanner"
)

// WriteCycloneDX writes the release's SBOM as one CycloneDX 1.6 JSON
// document (see the package documentation for its shape).
func WriteCycloneDX(w io.Writer, rel *reports.Release) error {
	if err := rel.Validate(); err != nil {
		return err
	}
	bom := cycloneDXBOM(rel, version.Vigil())
	enc := cyclonedx.NewBOMEncoder(w, cyclonedx.BOMFileFormatJSON).SetPretty(true)
	if err := enc.EncodeVersion(bom, cyclonedx.SpecVersion1_6); err != nil {
		return fmt.Errorf("writing CycloneDX: %w", err)
	}
	return nil
}

func cycloneDXBOM(rel *reports.Release, vigilVersion string) *cyclonedx.BOM {
	bom := cyclonedx.NewBOM()
	bom.SerialNumber = "urn:uuid:" + releaseUUID(rel).String()
	bom.Version = 1

	product := cyclonedx.Component{
		BOMRef:  "product:" + rel.ProductID + "@" + rel.Version,
		Type:    cyclonedx.ComponentTypeApplication,
		Name:    cmp.Or(rel.ProductName, rel.ProductID),
		Version: rel.Version,
		Properties: &[]cyclonedx.Property{
			{Name: "vigil:product:id", Value: rel.ProductID},
		},
	}
	var toolComponents []cyclonedx.Component
	for _, t := range tools(rel, vigilVersion) {
		c := cyclonedx.Component{Type: cyclonedx.ComponentTypeApplication, Name: t[0], Version: t[1]}
		if t[0] == "vigil" {
			c.ExternalReferences = &[]cyclonedx.ExternalReference{{Type: cyclonedx.ERTypeWebsite, URL: homepage}}
		} else {
			c.Description = "Vigil's " + t[0] + " engine"
		}
		toolComponents = append(toolComponents, c)
	}
	bom.Metadata = &cyclonedx.Metadata{
		Timestamp: rel.Created.UTC().Format(time.RFC3339),
		Lifecycles: &[]cyclonedx.Lifecycle{
			{Phase: cyclonedx.LifecyclePhaseBuild},
		},
		Tools:     &cyclonedx.ToolsChoice{Components: &toolComponents},
		Component: &product,
	}

	components := []cyclonedx.Component{}
	deps := []cyclonedx.Dependency{}
	var targetRefs []string
	for _, s := range rel.SortedScans() {
		target, nested := scanComponent(s)
		targetRefs = append(targetRefs, target.BOMRef)
		var nestedRefs []string
		for _, c := range nested {
			nestedRefs = append(nestedRefs, c.BOMRef)
		}
		if len(nested) > 0 {
			target.Components = &nested
		}
		components = append(components, target)
		deps = append(deps, dependency(target.BOMRef, nestedRefs))
		for _, r := range nestedRefs {
			deps = append(deps, dependency(r, nil))
		}
	}
	bom.Components = &components
	deps = append([]cyclonedx.Dependency{dependency(product.BOMRef, targetRefs)}, deps...)
	bom.Dependencies = &deps
	return bom
}

func dependency(ref string, on []string) cyclonedx.Dependency {
	d := cyclonedx.Dependency{Ref: ref}
	if len(on) > 0 {
		d.Dependencies = &on
	}
	return d
}

// scanComponent describes a scanned repository or image as a component,
// with its packages as the components nested in it.
func scanComponent(s *reports.ReleaseScan) (cyclonedx.Component, []cyclonedx.Component) {
	var c cyclonedx.Component
	props := []cyclonedx.Property{}
	if s.IsImage() {
		c = cyclonedx.Component{
			BOMRef:     "image:" + s.Image + "@" + s.Digest,
			Type:       cyclonedx.ComponentTypeContainer,
			Name:       imageName(s),
			Version:    s.Digest,
			PackageURL: imagePURL(s),
		}
		if alg, hex, ok := strings.Cut(s.Digest, ":"); ok && alg == "sha256" {
			c.Hashes = &[]cyclonedx.Hash{{Algorithm: cyclonedx.HashAlgoSHA256, Value: hex}}
		}
		props = append(props, cyclonedx.Property{Name: "vigil:image:reference", Value: s.Image})
		if s.Result != nil && s.Result.Target.Platform != "" {
			props = append(props, cyclonedx.Property{Name: "vigil:image:platform", Value: s.Result.Target.Platform})
		}
	} else {
		c = cyclonedx.Component{
			BOMRef:  "repository:" + s.Project + "@" + s.Commit,
			Type:    cyclonedx.ComponentTypeApplication,
			Name:    s.Project,
			Version: s.Commit,
		}
		if uri := repositoryURI(s); uri != "" {
			c.ExternalReferences = &[]cyclonedx.ExternalReference{{Type: cyclonedx.ERTypeVCS, URL: uri}}
		}
		props = append(props,
			cyclonedx.Property{Name: "vigil:repository:url", Value: s.Repository},
			cyclonedx.Property{Name: "vigil:repository:commit", Value: s.Commit})
	}
	props = append(props, scanProperties(s)...)
	c.Properties = &props

	var nested []cyclonedx.Component
	refs := map[string]int{}
	for _, p := range s.Components() {
		nc := packageComponent(p)
		nc.BOMRef = uniqueRef(refs, c.BOMRef+"|"+cmp.Or(p.PURL, p.Name+"@"+p.Version))
		nested = append(nested, nc)
	}
	return c, nested
}

// scanProperties are the facts of a scan every target carries: policy
// version, times and engines.
func scanProperties(s *reports.ReleaseScan) []cyclonedx.Property {
	var props []cyclonedx.Property
	if s.PolicyVersion != "" {
		props = append(props, cyclonedx.Property{Name: "vigil:policy:version", Value: s.PolicyVersion})
	}
	if s.Result == nil {
		return props
	}
	props = append(props,
		cyclonedx.Property{Name: "vigil:scan:started", Value: s.Result.StartedAt.UTC().Format(time.RFC3339)},
		cyclonedx.Property{Name: "vigil:scan:finished", Value: s.Result.FinishedAt.UTC().Format(time.RFC3339)})
	for _, e := range s.Result.Engines {
		props = append(props, cyclonedx.Property{Name: "vigil:scan:engine", Value: e.ID + " " + e.Version})
	}
	return props
}

// packageComponent describes one package found by the sbom engine.
func packageComponent(p scanner.Component) cyclonedx.Component {
	c := cyclonedx.Component{
		Type:       cyclonedx.ComponentTypeLibrary,
		Name:       cmp.Or(p.Name, "unnamed"),
		Version:    p.Version,
		PackageURL: p.PURL,
	}
	if expr, ok := licenseExpression(p.Licenses); ok {
		c.Licenses = &cyclonedx.Licenses{{Expression: expr}}
	} else if len(p.Licenses) > 0 {
		ls := make(cyclonedx.Licenses, len(p.Licenses))
		for i, l := range p.Licenses {
			ls[i] = cyclonedx.LicenseChoice{License: &cyclonedx.License{Name: l}}
		}
		c.Licenses = &ls
	}
	props := []cyclonedx.Property{{Name: "vigil:package:type", Value: p.Type}}
	for _, l := range p.Locations {
		props = append(props, cyclonedx.Property{Name: "vigil:location", Value: l})
	}
	if p.Layer != "" {
		props = append(props, cyclonedx.Property{Name: "vigil:image:layer", Value: p.Layer})
	}
	c.Properties = &props
	return c
}

// uniqueRef returns ref, or ref#N when ref was handed out before (the same
// package found at two places of one target).
func uniqueRef(seen map[string]int, ref string) string {
	seen[ref]++
	if n := seen[ref]; n > 1 {
		return ref + "#" + strconv.Itoa(n)
	}
	return ref
}
