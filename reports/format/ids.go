package format

import (
	"cmp"
	"net/url"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/uuid"

	"github.com/vigil-sec/vigil/reports"
	scanformat "github.com/vigil-sec/vigil/scanner/format"
	"github.com/vigil-sec/vigil/scanner/source"
)

// homepage is Vigil's URL, which names it as a tool in the documents.
const homepage = "https://github.com/vigil-sec/vigil"

// releaseUUID is a name-based (SHA-1) UUID of the release: the same
// release always gets the same serial number and namespace.
func releaseUUID(rel *reports.Release) uuid.UUID {
	key := strings.Join([]string{"vigil", "release", rel.ProductID, rel.Version, rel.Created.UTC().Format("2006-01-02T15:04:05.999999999Z")}, "\x00")
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte(key))
}

// imagePURL is the package URL of an image at its digest
// (pkg:oci/NAME@DIGEST?repository_url=REGISTRY/REPO), or "" when the
// reference does not parse.
func imagePURL(s *reports.ReleaseScan) string {
	ref, err := name.ParseReference(s.Image)
	if err != nil {
		return ""
	}
	repo := ref.Context()
	last := repo.RepositoryStr()
	if i := strings.LastIndex(last, "/"); i >= 0 {
		last = last[i+1:]
	}
	q := url.Values{"repository_url": {repo.Name()}}
	if t, ok := ref.(name.Tag); ok && t.TagStr() != "" {
		q.Set("tag", t.TagStr())
	}
	return "pkg:oci/" + url.PathEscape(strings.ToLower(last)) + "@" + url.QueryEscape(s.Digest) + "?" + q.Encode()
}

// imageName is the image's repository without tag or digest, as a
// component's name.
func imageName(s *reports.ReleaseScan) string {
	if ref, err := name.ParseReference(s.Image); err == nil {
		return ref.Context().Name()
	}
	return s.Image
}

// repositoryURI returns the scan's repository as a URI fit for the
// documents (an scp-like address made an ssh URL), or "" when it names no
// remote repository (a local path).
func repositoryURI(s *reports.ReleaseScan) string {
	if !source.IsRepoURL(s.Repository) {
		return ""
	}
	return scanformat.RepositoryURI(s.Repository)
}

// tools lists Vigil and every engine that took part in the release's
// scans, as (name, version) pairs sorted by name and version, once each.
func tools(rel *reports.Release, vigilVersion string) [][2]string {
	out := [][2]string{{"vigil", vigilVersion}}
	for _, s := range rel.SortedScans() {
		if s.Result == nil {
			continue
		}
		for _, e := range s.Result.Engines {
			if t := [2]string{e.ID, e.Version}; !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
	slices.SortFunc(out, func(a, b [2]string) int { return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1])) })
	return out
}
