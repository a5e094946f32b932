// Package web serves files named by the request.
package web

import (
	"net/http"
	"os"
)

// Serve writes the file named by the request.
func Serve(w http.ResponseWriter, r *http.Request) {
	data, err := os.ReadFile(r.URL.Query().Get("file"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	w.Write(data)
}
