// Package store builds SQL from what the caller sends.
package store

import (
	"database/sql"
	"net/http"
)

// Lookup finds a user by the name given in the request.
func Lookup(db *sql.DB, r *http.Request) (*sql.Rows, error) {
	name := r.URL.Query().Get("name")
	return db.Query("SELECT * FROM users WHERE name = '" + name + "'")
}
