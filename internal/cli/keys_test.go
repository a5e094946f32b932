package cli_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

// TestKeysCommands: rotate prints the new key's ID, list shows it
// current and the one it replaced retired.
func TestKeysCommands(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		storeArgs := append([]string{"--data", filepath.Join(t.TempDir(), "data")}, sealKeyFile(t)...)
		if dialect == store.Postgres {
			storeArgs = append(storeArgs, "--database", storetest.DSN(t, dialect))
		}
		with := func(args ...string) []string { return append(args, storeArgs...) }

		code, out, _ := vigil(t, with("keys", "list", "--purpose", "reports")...)
		if code != 0 || out != "" {
			t.Fatalf("list on an empty store: exit %d, %q", code, out)
		}
		var ids []string
		for range 2 {
			code, out, _ := vigil(t, with("keys", "rotate", "--purpose", "reports")...)
			if code != 0 || len(strings.TrimSpace(out)) != 43 { // a base64url SHA-256
				t.Fatalf("rotate: exit %d, %q; want a key ID", code, out)
			}
			ids = append(ids, strings.TrimSpace(out))
		}
		var list struct {
			Keys []struct {
				KID       string  `json:"kid"`
				Current   bool    `json:"current"`
				RetiredAt *string `json:"retired_at"`
			} `json:"keys"`
		}
		vigilJSON(t, &list, with("keys", "list", "--purpose", "reports", "--json")...)
		if len(list.Keys) != 2 || list.Keys[0].KID != ids[1] || !list.Keys[0].Current ||
			list.Keys[1].KID != ids[0] || list.Keys[1].Current || list.Keys[1].RetiredAt == nil {
			t.Fatalf("list --json after two rotations = %+v, want %s current then %s retired", list, ids[1], ids[0])
		}
		_, out, _ = vigil(t, with("keys", "list", "--purpose", "reports")...)
		if !strings.Contains(out, ids[1]+"  current") || !strings.Contains(out, ids[0]+"  retired") {
			t.Errorf("list:\n%s", out)
		}

		for name, args := range map[string][]string{
			"no purpose":    with("keys", "rotate"),
			"other purpose": with("keys", "rotate", "--purpose", "tokens"),
		} {
			if code, _, _ := vigil(t, args...); code != 2 {
				t.Errorf("%s: exit %d, want 2", name, code)
			}
		}
	})
}
