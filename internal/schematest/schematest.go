// Package schematest validates documents that Vigil emits against the
// official JSON schemas kept in ../shared/schemas beside the repository
// (CycloneDX, SPDX, SARIF). Tests that use it skip, saying why, where that
// folder is absent.
package schematest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Official schemas, relative to the schemas folder.
const (
	CycloneDX16 = "cyclonedx/bom-1.6.schema.json"
	SPDX23      = "spdx/spdx-2.3.schema.json"
	SARIF210    = "sarif/sarif-schema-2.1.0.json"
)

// Dir returns the schemas folder: $VIGIL_SCHEMAS, else ../shared/schemas
// relative to the module root.
func Dir() (string, error) {
	if d := os.Getenv("VIGIL_SCHEMAS"); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(filepath.Dir(d), "shared", "schemas"), nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s", wd)
		}
	}
}

// Validate checks doc against the schema at rel (one of the constants) and
// fails the test with every violation. It skips the test when the schemas
// folder is absent.
func Validate(t testing.TB, rel string, doc []byte) {
	t.Helper()
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, rel)); err != nil {
		t.Skipf("official schema %s not found in %s (set VIGIL_SCHEMAS or put shared/schemas beside the repository): %v", rel, dir, err)
	}
	c := jsonschema.NewCompiler()
	// Schemas refer to their neighbours (CycloneDX to spdx.schema.json and
	// jsf-0.82.schema.json) by name: load every schema of the folder under
	// its file URL and its $id, so no reference goes to the network.
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".json" {
			return err
		}
		f, err := os.Open(p) // #nosec G122 -- test helper reading the project's own schema folder
		if err != nil {
			return err
		}
		defer f.Close()
		s, err := jsonschema.UnmarshalJSON(f)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if err := c.AddResource(p, s); err != nil {
			return err
		}
		if m, ok := s.(map[string]any); ok {
			if id, ok := m["$id"].(string); ok && id != "" {
				_ = c.AddResource(id, s)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("loading schemas from %s: %v", dir, err)
	}
	sch, err := c.Compile(filepath.Join(dir, rel))
	if err != nil {
		t.Fatalf("compiling %s: %v", rel, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("document is not JSON: %v", err)
	}
	if err := sch.Validate(inst); err != nil {
		var pretty bytes.Buffer
		_ = json.Indent(&pretty, doc, "", "  ")
		if pretty.Len() > 4000 {
			pretty.Truncate(4000)
		}
		t.Fatalf("document is not valid against %s:\n%v\n--- document (start) ---\n%s", rel, err, pretty.String())
	}
}
