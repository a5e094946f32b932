package sbom_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/scanner"
	"github.com/vigil-sec/vigil/scanner/image/imagetest"
	"github.com/vigil-sec/vigil/scanner/sbom"
)

// layered scans img through the layer cache c and returns its components
// and the positions (bottom 0) of the layers cataloged; the others came
// from the cache.
func layered(t *testing.T, c scanner.Cache, img v1.Image) ([]scanner.Component, []int) {
	t.Helper()
	var (
		mu        sync.Mutex
		cataloged []int
		whole     bool
	)
	cfg := &sbom.Config{Logger: testLogger(t), Progress: func(m string) {
		mu.Lock()
		defer mu.Unlock()
		if rest, ok := strings.CutPrefix(m, "cataloging layer "); ok {
			n, _, _ := strings.Cut(rest, "/")
			i, err := strconv.Atoi(n)
			if err != nil {
				t.Errorf("progress %q: no layer number", m)
			}
			cataloged = append(cataloged, i-1)
		}
		if strings.HasPrefix(m, "cataloging the whole image") {
			whole = true
		}
	}}
	out, err := sbom.Engine(cfg).Run(scanner.WithCache(t.Context(), c), imageTarget(t, img))
	if err != nil {
		t.Fatal(err)
	}
	if whole {
		t.Error("the layered scan fell back to a whole-image catalog")
	}
	return out.SBOM.Components, cataloged
}

// whole scans img the usual way, squashed, without a cache.
func whole(t *testing.T, img v1.Image) []scanner.Component {
	t.Helper()
	out, err := sbom.Engine(&sbom.Config{Logger: testLogger(t)}).Run(context.WithoutCancel(t.Context()), imageTarget(t, img))
	if err != nil {
		t.Fatal(err)
	}
	return out.SBOM.Components
}

func imageTarget(t *testing.T, img v1.Image) *scanner.Target {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return &scanner.Target{Kind: scanner.KindImage, Ref: "vigil.test/layers@" + d.String(), Image: img, Digest: d.String(), Platform: "linux/amd64"}
}

// identity is what the layered SBOM must agree on with a whole-image scan.
type identity struct{ Name, Version, Type, PURL string }

func identities(cs []scanner.Component) []identity {
	out := []identity{}
	for _, c := range cs {
		out = append(out, identity{c.Name, c.Version, c.Type, c.PURL})
	}
	return out
}

func layers(t *testing.T, ls ...func() (v1.Layer, error)) []v1.Layer {
	t.Helper()
	var out []v1.Layer
	for _, l := range ls {
		layer, err := l()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, layer)
	}
	return out
}

// TestLayerCache checks the layered SBOM against syft's whole-image scan
// on the fixture image, on images whose top layer deletes (whiteout) or
// replaces files of lower ones, and that an image sharing lower layers
// with one scanned before catalogs only its own.
func TestLayerCache(t *testing.T) {
	t.Parallel()
	fx := imagetest.New(t)
	bin, _ := imagetest.GoBinary(t)
	binPath := strings.TrimPrefix(imagetest.GoBinPath, "/")
	dir, base := binPath[:strings.LastIndex(binPath, "/")+1], binPath[strings.LastIndex(binPath, "/")+1:]

	dpkg := func() (v1.Layer, error) { return imagetest.DpkgLayer(imagetest.Debs, "amd64") }
	goLayer := func() (v1.Layer, error) {
		return imagetest.LayerFromFiles(map[string]imagetest.File{binPath: {Data: bin, Mode: 0o755}})
	}
	deleteBin := func() (v1.Layer, error) {
		return imagetest.LayerFromFiles(map[string]imagetest.File{dir + ".wh." + base: {}})
	}
	fewerDebs := func() (v1.Layer, error) { return imagetest.DpkgLayer(imagetest.Debs[:1], "amd64") }
	secondBin := func() (v1.Layer, error) {
		return imagetest.LayerFromFiles(map[string]imagetest.File{"opt/app/second-app": {Data: bin, Mode: 0o755}})
	}
	build := func(ls []v1.Layer) v1.Image {
		img, err := imagetest.Build("amd64", ls...)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}

	db := storetest.Open(t, store.SQLite)
	blobs, err := store.NewBlobs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cache := store.NewScanCache(db, blobs)

	tests := []struct {
		name          string
		img           v1.Image
		wantCataloged []int
		check         func(t *testing.T, cs []scanner.Component)
	}{
		{name: "fixture", img: fx.Image, wantCataloged: []int{0, 1, 2}},
		{name: "same base, new layer", img: build(layers(t, dpkg, goLayer, secondBin)), wantCataloged: []int{2}},
		{name: "whiteout of the Go binary", img: build(layers(t, dpkg, goLayer, deleteBin)), wantCataloged: []int{2},
			check: func(t *testing.T, cs []scanner.Component) {
				for _, c := range cs {
					if c.Type == "go-module" {
						t.Errorf("%s %s is reported, but a later layer deleted %s", c.Name, c.Version, imagetest.GoBinPath)
					}
				}
			}},
		// The new top layer also writes /etc/os-release, which the Go
		// layer's catalog read from the dpkg layer (for the distro): in
		// this image it comes from another layer, so the Go layer's
		// cached catalog does not apply and it is cataloged again.
		{name: "dpkg database replaced", img: build(layers(t, dpkg, goLayer, fewerDebs)), wantCataloged: []int{1, 2},
			check: func(t *testing.T, cs []scanner.Component) {
				var debs []string
				for _, c := range cs {
					if c.Type == "deb" {
						debs = append(debs, c.Name)
					}
				}
				if want := []string{imagetest.Debs[0].Name}; !cmp.Equal(debs, want) {
					t.Errorf("debs = %q, want %q: the replaced database's packages must go", debs, want)
				}
			}},
		{name: "fixture again", img: fx.Image},
	}
	for _, tt := range tests {
		got, cataloged := layered(t, cache, tt.img)
		want := whole(t, tt.img)
		if diff := cmp.Diff(identities(got), identities(want)); diff != "" {
			t.Errorf("%s: layered packages differ from a whole-image scan (-layered +whole):\n%s", tt.name, diff)
		}
		// Everything else Vigil reports about a package agrees too.
		if diff := cmp.Diff(got, want); diff != "" {
			t.Errorf("%s: layered components differ from a whole-image scan (-layered +whole):\n%s", tt.name, diff)
		}
		if !cmp.Equal(cataloged, tt.wantCataloged, cmpopts.EquateEmpty()) {
			t.Errorf("%s: layers %v cataloged, want %v", tt.name, cataloged, tt.wantCataloged)
		}
		if len(want) == 0 {
			t.Errorf("%s: the whole-image scan found nothing", tt.name)
		}
		if tt.check != nil {
			tt.check(t, got)
		}
	}
}
