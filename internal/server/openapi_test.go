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

// Every operation has an operationId, unique in the document, so that
// client generators name their methods (and none is left out of them).
func TestOpenAPIOperationIDs(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	n := 0
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			switch method {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
			default:
				continue // parameters, summary…
			}
			n++
			var op struct {
				OperationID string `json:"operationId"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatal(err)
			}
			where := strings.ToUpper(method) + " " + path
			switch other, dup := seen[op.OperationID]; {
			case op.OperationID == "":
				t.Errorf("%s has no operationId", where)
			case dup:
				t.Errorf("%s and %s share operationId %q", where, other, op.OperationID)
			}
			seen[op.OperationID] = where
		}
	}
	if n < 60 {
		t.Errorf("%d operations described, want the whole API", n)
	}
}
