package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

// pushRandom pushes a small random image to ref and returns its digest.
func pushRandom(t *testing.T, ref string, seed int64) string {
	t.Helper()
	img, err := random.Image(512, 1, random.WithSource(rand.NewSource(seed)))
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// review sends a Pod with the image to the admission webhook.
func (e *env) review(img string) (allowed bool, msg string) {
	e.t.Helper()
	body := fmt.Sprintf(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1",
		"kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},
		"operation":"CREATE","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},
		"spec":{"containers":[{"name":"c","image":%q}]}}}}`, img)
	resp, err := e.ts.Client().Post(e.ts.URL+"/admission/v1/validate", "application/json", strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Response struct {
			UID     string
			Allowed bool
			Status  struct{ Message string }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Response.UID != "u-1" {
		e.t.Fatalf("admission answer: %d %v %+v", resp.StatusCode, err, out)
	}
	return out.Response.Allowed, out.Response.Status.Message
}

func (e *env) imageGate(img string) gateJSON {
	e.t.Helper()
	var g gateJSON
	if code := e.do("GET", "/api/v1/gate?image="+img, nil, &g); code != http.StatusOK {
		e.t.Fatalf("gate of %s: %d", img, code)
	}
	return g
}

// A tag is judged by the digest it names now, not by the scan of the
// digest it named when it was scanned; a registry that cannot be asked
// makes the gate unknown.
func TestImageGateResolvesTags(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)
		reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
		defer reg.Close()
		host := strings.TrimPrefix(reg.URL, "http://")
		ref := host + "/team/app:v1"

		first := pushRandom(t, ref, 1)
		var sc struct{ ID string }
		if code := e.do("POST", "/api/v1/scans", map[string]any{"image": ref}, &sc); code != http.StatusAccepted {
			t.Fatalf("POST image scan: %d", code)
		}
		if s := e.waitScan(sc.ID); s.Status != "succeeded" {
			t.Fatalf("image scan: %s (%s)", s.Status, s.Error)
		}
		if g := e.imageGate(ref); g.Decision != "pass" {
			t.Fatalf("gate of the scanned tag: %+v, want pass", g)
		}
		if ok, msg := e.review(ref); !ok {
			t.Fatalf("scanned tag denied: %s", msg)
		}

		// The same tag pushed again with another image.
		second := pushRandom(t, ref, 2)
		if second == first {
			t.Fatal("the two images have the same digest")
		}
		before := countScans(t, e.db)
		g := e.imageGate(ref)
		if g.Decision != "unknown" || !hasCode(g, "NOT_SCANNED", second) {
			t.Errorf("gate of the re-pushed tag: %+v, want unknown naming %s", g, second)
		}
		if ok, msg := e.review(ref); ok {
			t.Error("re-pushed tag admitted on the previous digest's scan")
		} else if !strings.Contains(msg, "team/app:v1") {
			t.Errorf("denial does not name the image: %s", msg)
		}
		if n := countScans(t, e.db); n != before {
			t.Errorf("asking about the tag made %d scans", n-before)
		}
		// The digest in the reference wins over the tag.
		pinned := host + "/team/app:v1@" + first
		if g := e.imageGate(pinned); g.Decision != "pass" {
			t.Errorf("gate of the scanned digest under the moved tag: %+v, want pass", g)
		}
		if ok, msg := e.review(pinned); !ok {
			t.Errorf("scanned digest denied: %s", msg)
		}
		if ok, _ := e.review(host + "/team/app:v1@" + second); ok {
			t.Error("unscanned digest admitted")
		}

		// The tag back on the scanned image: pass again.
		img, err := remote.Image(mustRef(t, pinned))
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(mustRef(t, ref), img); err != nil {
			t.Fatal(err)
		}
		if g := e.imageGate(ref); g.Decision != "pass" {
			t.Errorf("gate of the tag moved back: %+v, want pass", g)
		}

		// A registry that cannot be asked: unknown, and denied, although
		// the store has a passing scan recorded under that tag.
		reg.Close()
		g = e.imageGate(ref)
		if g.Decision != "unknown" || !hasCode(g, "TAG_UNRESOLVED", "team/app:v1") {
			t.Errorf("gate of a tag whose registry is down: %+v, want unknown TAG_UNRESOLVED", g)
		}
		if ok, _ := e.review(ref); ok {
			t.Error("tag whose registry is down admitted")
		}
		if g := e.imageGate(pinned); g.Decision != "pass" {
			t.Errorf("gate by digest with the registry down: %+v, want pass", g)
		}
	})
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// countingTransport counts the requests it carries.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// A multi-platform tag is judged by the image a scan picks from it, and
// the registry is asked through the configured transport.
func TestImageGateResolvesIndexTags(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		rt := &countingTransport{}
		e, _ := newEnv(t, dialect, envConfig{start: true, modify: func(c *server.Config) { c.RegistryTransport = rt }})
		reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
		defer reg.Close()
		ref := strings.TrimPrefix(reg.URL, "http://") + "/team/multi:v1"
		img, err := random.Image(512, 1, random.WithSource(rand.NewSource(7)))
		if err != nil {
			t.Fatal(err)
		}
		idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}})
		if err := remote.WriteIndex(mustRef(t, ref), idx); err != nil {
			t.Fatal(err)
		}
		var sc struct{ ID string }
		if code := e.do("POST", "/api/v1/scans", map[string]any{"image": ref}, &sc); code != http.StatusAccepted {
			t.Fatalf("POST image scan: %d", code)
		}
		if s := e.waitScan(sc.ID); s.Status != "succeeded" {
			t.Fatalf("image scan: %s (%s)", s.Status, s.Error)
		}
		before := rt.n.Load()
		if g := e.imageGate(ref); g.Decision != "pass" {
			t.Errorf("gate of the scanned index tag: %+v, want pass", g)
		}
		if rt.n.Load() == before {
			t.Error("the tag was not resolved through the configured transport")
		}
	})
}
