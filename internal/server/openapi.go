package server

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
)

// openAPIFiles hold the OpenAPI 3.1 description of the Management API:
// 00-base.json is the document (info, security schemes, shared schemas
// and the scan and gate paths); every other file is a fragment of the
// form {"paths": {…}, "components": {"schemas": {…}, "responses": {…}}}
// owned by one part of the server, merged in file-name order. A path or
// component named twice is an error, caught at start and by the tests.
//
//go:embed openapi/*.json
var openAPIFiles embed.FS

// openAPI is the merged document, built once.
var openAPI = func() []byte {
	b, err := buildOpenAPI(openAPIFiles)
	if err != nil {
		panic(err) // embedded files: a defect the tests catch
	}
	return b
}()

func buildOpenAPI(fsys fs.FS) ([]byte, error) {
	names, err := fs.Glob(fsys, "openapi/*.json")
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	var doc map[string]any
	for i, name := range names {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		var part map[string]any
		if err := json.Unmarshal(b, &part); err != nil {
			return nil, fmt.Errorf("openapi: %s: %w", name, err)
		}
		if i == 0 {
			doc = part
			continue
		}
		for key, v := range part {
			switch key {
			case "paths":
				if err := mergeObject(doc, "paths", v, name); err != nil {
					return nil, err
				}
			case "components":
				comps, ok := v.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("openapi: %s: components is not an object", name)
				}
				dc, _ := doc["components"].(map[string]any)
				if dc == nil {
					dc = map[string]any{}
					doc["components"] = dc
				}
				for ck, cv := range comps {
					if err := mergeObject(dc, ck, cv, name); err != nil {
						return nil, err
					}
				}
			default:
				return nil, fmt.Errorf("openapi: %s: a fragment holds only paths and components, not %q", name, key)
			}
		}
	}
	return json.MarshalIndent(doc, "", "  ")
}

// mergeObject adds the members of src to dst[key], refusing duplicates.
func mergeObject(dst map[string]any, key string, src any, file string) error {
	from, ok := src.(map[string]any)
	if !ok {
		return fmt.Errorf("openapi: %s: %s is not an object", file, key)
	}
	to, _ := dst[key].(map[string]any)
	if to == nil {
		to = map[string]any{}
		dst[key] = to
	}
	for k, v := range from {
		if _, dup := to[k]; dup {
			return fmt.Errorf("openapi: %s: %s %q is already described", file, key, k)
		}
		to[k] = v
	}
	return nil
}

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(openAPI)
}
