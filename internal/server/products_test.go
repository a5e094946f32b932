package server_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

// shippedJSON is what a project says of the products it ships in.
type shippedJSON struct {
	Name       string
	Products   []string
	Production bool
}

// TestProjectProducts records through PATCH the licensing products a
// project ships in and whether it is in production; an unknown product is
// named and changes nothing.
func TestProjectProducts(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e, _ := newEnv(t, dialect, envConfig{})
		e.createProduct("com.example.app")
		e.createProduct("com.example.suite")
		e.createProject("app", "https://github.com/acme/app")

		var p shippedJSON
		if code := e.do("GET", "/api/v1/projects/app", nil, &p); code != 200 || p.Products == nil || len(p.Products) != 0 || p.Production {
			t.Fatalf("a new project: %d %+v, want products [] and not in production", code, p)
		}
		if code := e.do("PATCH", "/api/v1/projects/app", map[string]any{"products": []string{"com.example.suite", "com.example.app"}, "production": true}, &p); code != 200 {
			t.Fatalf("PATCH products: %d", code)
		}
		want := shippedJSON{Name: "app", Products: []string{"com.example.app", "com.example.suite"}, Production: true}
		if !reflect.DeepEqual(p, want) {
			t.Errorf("after PATCH: %+v, want %+v", p, want)
		}

		// An unknown product: 400 naming it, and nothing changes.
		var apiErr struct{ Code, Message string }
		code := e.do("PATCH", "/api/v1/projects/app", map[string]any{"products": []string{"com.example.app", "com.example.nope"}, "production": false, "schedule": "@daily"}, &apiErr)
		if code != http.StatusBadRequest || apiErr.Code != "INVALID_FIELD" || !strings.Contains(apiErr.Message, `"com.example.nope"`) || strings.Contains(apiErr.Message, `"com.example.app"`) {
			t.Errorf("an unknown product: %d %+v, want 400 naming it alone", code, apiErr)
		}
		var after struct {
			shippedJSON
			Schedule string
		}
		if e.do("GET", "/api/v1/projects/app", nil, &after); !reflect.DeepEqual(after.shippedJSON, want) || after.Schedule != "0 3 * * *" {
			t.Errorf("a refused PATCH changed the project: %+v", after)
		}
		for _, bad := range []any{[]string{"-x"}, []string{""}, "com.example.app"} {
			if code := e.do("PATCH", "/api/v1/projects/app", map[string]any{"products": bad}, &apiErr); code != http.StatusBadRequest {
				t.Errorf("products %q: %d %+v, want 400", bad, code, apiErr)
			}
		}

		// The list shows them; [] removes them.
		var list struct{ Projects []shippedJSON }
		if code := e.do("GET", "/api/v1/projects", nil, &list); code != 200 || len(list.Projects) != 1 || !reflect.DeepEqual(list.Projects[0], want) {
			t.Errorf("list: %d %+v", code, list)
		}
		if code := e.do("PATCH", "/api/v1/projects/app", map[string]any{"products": []string{}}, &p); code != 200 || len(p.Products) != 0 || !p.Production {
			t.Errorf("PATCH products []: %d %+v", code, p)
		}
	})
}

// createProduct makes a licensing product with the ID.
func (e *env) createProduct(id string) {
	e.t.Helper()
	if code := e.do("POST", "/api/v1/products", map[string]any{"id": id, "name": id}, nil); code != http.StatusCreated {
		e.t.Fatalf("create product %s: %d", id, code)
	}
}
