package storetest

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/store"
)

// Dump returns every value of every row of every table of the database,
// as text: what a copy of the database alone (a backup, a dump) gives
// whoever holds it. Tests of secrets at rest try each as a key.
func Dump(t testing.TB, db *store.DB) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	q := "SELECT name FROM sqlite_master WHERE type = 'table'"
	if db.Dialect() == store.Postgres {
		q = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
	}
	rows, err := db.SQL().QueryContext(ctx, q)
	if err != nil {
		t.Fatalf("dump: list tables: %v", err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatalf("dump: list tables: %v", err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	if len(tables) == 0 {
		t.Fatal("dump: no tables")
	}
	var out []string
	for _, table := range tables {
		rows, err := db.SQL().QueryContext(ctx, `SELECT * FROM "`+table+`"`)
		if err != nil {
			t.Fatalf("dump: %s: %v", table, err)
		}
		cols, err := rows.Columns()
		if err != nil {
			t.Fatalf("dump: %s: %v", table, err)
		}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("dump: %s: %v", table, err)
			}
			for _, v := range vals {
				switch v := v.(type) {
				case nil:
				case []byte:
					out = append(out, string(v))
				case string:
					out = append(out, v)
				default:
					out = append(out, fmt.Sprint(v))
				}
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("dump: %s: %v", table, err)
		}
		rows.Close()
	}
	return out
}

// ByteStrings returns every byte string a dumped value may hold: the value
// itself, and it and each of its parts (split at the separators encodings
// put around keys: "$", ":", ".", ",", quotes, braces, spaces; and what
// follows a prefix such as "whsec_") decoded as base64 (either alphabet,
// padded or not) and hex. Duplicates are dropped.
func ByteStrings(values []string) [][]byte {
	seen := map[string]bool{}
	var out [][]byte
	add := func(b []byte) {
		if len(b) > 0 && !seen[string(b)] {
			seen[string(b)] = true
			out = append(out, b)
		}
	}
	decode := func(s string) {
		add([]byte(s))
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(s); err == nil {
				add(b)
			}
		}
		if b, err := hex.DecodeString(s); err == nil {
			add(b)
		}
	}
	for _, v := range values {
		decode(v)
		for _, part := range strings.FieldsFunc(v, func(r rune) bool { return strings.ContainsRune("$:.,\"'{}[] \t\n", r) }) {
			decode(part)
			if _, after, ok := strings.Cut(part, "_"); ok { // whsec_…, whpk_…
				decode(after)
			}
		}
	}
	return out
}
