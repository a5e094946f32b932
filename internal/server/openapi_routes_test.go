package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/store"
)

// routeRE finds the route patterns the server registers: "METHOD /api/v1/…".
var routeRE = regexp.MustCompile(`"(GET|POST|PUT|PATCH|DELETE) (/api/v1/[^"\s]*)"`)

// TestOpenAPIDescribesEveryRoute holds the document and the mux to each
// other: every /api/v1 route pattern in the server's source is described
// (same path template and method), and every described operation reaches
// a handler of its own rather than the /api/ fallback or a 405.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	e := setup(t, store.SQLite)
	res, err := e.ts.Client().Get(e.ts.URL + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}

	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range routeRE.FindAllStringSubmatch(string(src), -1) {
			method, path := strings.ToLower(m[1]), m[2]
			if path == "/api/v1/openapi.json" {
				continue
			}
			if _, ok := doc.Paths[path][method]; !ok {
				t.Errorf("%s: route %s %s is not in the OpenAPI document", f, m[1], path)
			}
		}
	}

	param := regexp.MustCompile(`\{[^}]+\}`)
	methods := []string{"get", "post", "put", "patch", "delete"}
	for path, ops := range doc.Paths {
		if !strings.HasPrefix(path, "/api/") {
			continue
		}
		for method := range ops {
			if !slices.Contains(methods, method) {
				continue
			}
			req, err := http.NewRequest(strings.ToUpper(method), e.ts.URL+param.ReplaceAllString(path, "x"), nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := e.ts.Client().Do(req) // no token: nothing changes
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
			res.Body.Close()
			if res.StatusCode == http.StatusMethodNotAllowed || strings.Contains(string(body), "no such API endpoint") {
				t.Errorf("%s %s is described but not served: %d %s", strings.ToUpper(method), path, res.StatusCode, body)
			}
		}
	}
}
