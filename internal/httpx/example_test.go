package httpx_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/vigil-sec/vigil/internal/httpx"
)

// A handler decodes its body with DecodeJSON and answers a bad one with the
// *httpx.Error it returns.
func ExampleDecodeJSON() {
	create := func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Name string `json:"name"`
		}
		if err := httpx.DecodeJSON(w, r, &req, 0); err != nil {
			httpx.WriteErr(w, err)
			return
		}
		httpx.WriteJSON(w, http.StatusCreated, map[string]string{"name": req.Name})
	}

	for _, body := range []string{`{"name":"api"}`, `{"name":"api","nmae":"x"}`} {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/projects", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		create(w, r)
		fmt.Print(w.Code, " ", w.Body)
	}
	// Output:
	// 201 {"name":"api"}
	// 400 {"code":"UNKNOWN_FIELD","message":"unknown field \"nmae\""}
}
