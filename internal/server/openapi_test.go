package server

import (
	"encoding/json"
	"strings"
	"testing"
	"testing/fstest"
)

func TestOpenAPIMergesFragments(t *testing.T) {
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	for _, p := range []string{"/api/v1/scans", "/api/v1/gate"} {
		if doc.Paths[p] == nil {
			t.Errorf("path %s is not described", p)
		}
	}
}

func TestOpenAPIRefusesDuplicates(t *testing.T) {
	fsys := fstest.MapFS{
		"openapi/00-base.json": {Data: []byte(`{"openapi":"3.1.0","paths":{"/a":{}},"components":{"schemas":{"A":{}}}}`)},
		"openapi/10-x.json":    {Data: []byte(`{"paths":{"/b":{}},"components":{"schemas":{"A":{}}}}`)},
	}
	_, err := buildOpenAPI(fsys)
	if err == nil || !strings.Contains(err.Error(), `schemas "A" is already described`) || !strings.Contains(err.Error(), "10-x.json") {
		t.Fatalf("err = %v, want a duplicate schema error naming the file", err)
	}
	fsys["openapi/10-x.json"] = &fstest.MapFile{Data: []byte(`{"paths":{"/b":{}},"info":{}}`)}
	if _, err := buildOpenAPI(fsys); err == nil || !strings.Contains(err.Error(), `not "info"`) {
		t.Fatalf("err = %v, want a refusal of info in a fragment", err)
	}
	fsys["openapi/10-x.json"] = &fstest.MapFile{Data: []byte(`{"paths":{"/b":{}},"components":{"schemas":{"B":{}}}}`)}
	b, err := buildOpenAPI(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"/b"`) || !strings.Contains(string(b), `"B"`) {
		t.Fatalf("merged document lacks the fragment: %s", b)
	}
}
