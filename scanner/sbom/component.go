package sbom

import (
	"cmp"
	"slices"
	"strings"

	"github.com/anchore/syft/syft/file"
	"github.com/anchore/syft/syft/pkg"
	syftsbom "github.com/anchore/syft/syft/sbom"

	"github.com/vigil-sec/vigil/scanner"
)

// components turns syft's packages into Vigil's components, sorted by
// type, name, version, purl and locations. Paths in an image are absolute;
// in a directory they are made relative to it.
func components(doc *syftsbom.SBOM, inImage bool) []scanner.Component {
	out := []scanner.Component{}
	for _, p := range doc.Artifacts.Packages.Sorted() {
		c := scanner.Component{
			Name:     p.Name,
			Version:  p.Version,
			Type:     string(p.Type),
			PURL:     p.PURL,
			Licenses: licenses(p),
		}
		locs := locations(p)
		for _, l := range locs {
			path := l.RealPath
			if !inImage {
				path = strings.TrimPrefix(path, "/")
			}
			if !slices.Contains(c.Locations, path) {
				c.Locations = append(c.Locations, path)
			}
		}
		if inImage {
			// The primary evidence comes first: for a deb, the dpkg
			// database rather than a copyright file.
			for _, l := range locs {
				if l.FileSystemID != "" {
					c.Layer = l.FileSystemID
					break
				}
			}
		}
		out = append(out, c)
	}
	slices.SortStableFunc(out, compareComponents)
	return out
}

func compareComponents(a, b scanner.Component) int {
	return cmp.Or(
		cmp.Compare(a.Type, b.Type),
		cmp.Compare(a.Name, b.Name),
		cmp.Compare(a.Version, b.Version),
		cmp.Compare(a.PURL, b.PURL),
		slices.Compare(a.Locations, b.Locations),
		cmp.Compare(a.Layer, b.Layer),
	)
}

// locations lists where the package was found, primary evidence first,
// each group sorted by path.
func locations(p pkg.Package) []file.Location {
	locs := p.Locations.ToSlice()
	slices.SortStableFunc(locs, func(a, b file.Location) int {
		return cmp.Or(
			cmp.Compare(rank(a), rank(b)),
			cmp.Compare(a.RealPath, b.RealPath),
			cmp.Compare(a.FileSystemID, b.FileSystemID),
		)
	})
	return locs
}

func rank(l file.Location) int {
	switch l.Annotations[pkg.EvidenceAnnotationKey] {
	case pkg.PrimaryEvidenceAnnotation:
		return 0
	case pkg.SupportingEvidenceAnnotation:
		return 1
	}
	return 2
}

// licenses lists the package's licenses as SPDX expressions where syft
// could map them, else as declared; sorted, without repeats.
func licenses(p pkg.Package) []string {
	var out []string
	for _, l := range p.Licenses.ToSlice() {
		v := l.SPDXExpression
		if v == "" {
			v = strings.TrimSpace(l.Value)
		}
		if v != "" {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
