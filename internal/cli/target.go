package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/licensing"
	"github.com/vigil-sec/vigil/licensing/oauth"
	"github.com/vigil-sec/vigil/reports"
)

// The administration commands (clients, tenants, products, entitlements,
// keys, the vendor's side of offline activation) have two transports and
// one set of arguments and outputs: they work on the installation's
// store, opened here as `vigil serve` opens it, or through a running
// server's Management API. Each command says what it does once, as an op
// that holds both (the API request, and the same on the store), and
// prints what comes back, which is the API's JSON for the object either
// way; a target picks the transport:
//
//  1. --data, --database or --seal-key-file given: the store;
//  2. else --server, $VIGIL_SERVER or a `vigil login`: the server;
//  3. else the default data directory (./vigil-data) when it holds a store;
//  4. else nothing: the error says how to give either.

// defaultDataDir is vigil serve's default --data: the administration
// commands open it when nothing else is given and it holds a store.
const defaultDataDir = "vigil-data"

// target are the flags of an administration command: its store or its
// server.
type target struct {
	store  storeFlags
	server serverFlags
}

func (t *target) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&t.store.data, "data", "", "work on the store of this data directory (vigil serve's --data) instead of a server (default ./"+defaultDataDir+" when it exists and no server is set)")
	fl.StringVar(&t.store.database, "database", "", "work on this PostgreSQL store (postgres://…) instead of a server; with --seal-key-file")
	fl.StringVar(&t.store.sealKeyFile, "seal-key-file", "", "the installation's seal key, for --data/--database (default DATA/"+sealKeyFile+")")
	t.server.register(cmd)
}

// op is one thing an administration command does, said for both
// transports: the Management API request, and the same done on the store,
// whose result is what the API answers (it is encoded as the API encodes
// it). A list op reads every page.
type op struct {
	scope        string // the scope the API call needs
	method, path string
	body         any
	// items names the list of a paged answer ({"<items>": [...],
	// "next_cursor": "…"}); local then returns the whole list.
	items string
	// anonymous calls take no credentials.
	anonymous bool
	local     func(ctx context.Context, l *local) (any, error)
}

// conn is an open transport.
type conn interface {
	// do runs an op and returns the answer's JSON.
	do(ctx context.Context, o op) ([]byte, error)
	// list runs a list op and returns every item's JSON.
	list(ctx context.Context, o op) ([]json.RawMessage, error)
	// String says which transport this is, for messages.
	String() string
	close()
}

// run opens the target's transport, runs the op and returns the answer;
// errors name the transport.
func (t *target) run(cmd *cobra.Command, stdio Stdio, o op) ([]byte, error) {
	c, err := t.open(cmd, stdio, o)
	if err != nil {
		return nil, err
	}
	defer c.close()
	b, err := c.do(cmd.Context(), o)
	return b, via(c, err)
}

// runList is run for a list op: every item's JSON.
func (t *target) runList(cmd *cobra.Command, stdio Stdio, o op) ([]json.RawMessage, error) {
	c, err := t.open(cmd, stdio, o)
	if err != nil {
		return nil, err
	}
	defer c.close()
	all, err := c.list(cmd.Context(), o)
	return all, via(c, err)
}

// open picks the transport by the rules above and opens it.
func (t *target) open(cmd *cobra.Command, stdio Stdio, o op) (conn, error) {
	fl := cmd.Flags()
	storeGiven := fl.Changed("data") || fl.Changed("database") || fl.Changed("seal-key-file")
	if storeGiven && fl.Changed("server") {
		return nil, &usageError{errors.New("give --server (a running server) or --data/--database (its store), not both")}
	}
	if !storeGiven {
		e, err := t.server.resolve()
		if err != nil {
			return nil, err
		}
		if e.server != "" {
			var c *apiClient
			if o.anonymous {
				c, err = t.server.anonymous(e)
			} else {
				c, err = t.server.authorized(e, o.scope)
			}
			if err != nil {
				return nil, fmt.Errorf("%w (the server is from %s)", err, e.from)
			}
			return &apiConn{c: c, from: e.from}, nil
		}
		if _, err := os.Stat(filepath.Join(defaultDataDir, "vigil.db")); err != nil {
			return nil, &usageError{fmt.Errorf("no Vigil installation to work on: run vigil login --server URL (or set $%s, $%s and $%s, or give --server) to work through a running server, "+
				"or give --data DIR (or --database URL with --seal-key-file) to work on its store", envServer, envClientID, envClientSecret)}
		}
		t.store.data = defaultDataDir
	}
	if t.store.data == "" {
		t.store.data = defaultDataDir // where --database installations keep their seal key by default
	}
	return openLocal(cmd.Context(), &t.store, stdio)
}

// via names the transport in an error.
func via(c conn, err error) error {
	if err == nil {
		return nil
	}
	return &viaError{via: c.String(), err: err}
}

// viaError is an error of a command, with the transport it used.
type viaError struct {
	via string
	err error
}

func (e *viaError) Error() string { return fmt.Sprintf("%v (%s)", e.err, e.via) }
func (e *viaError) Unwrap() error { return e.err }

// apiConn is the Management API of a running server.
type apiConn struct {
	c    *apiClient
	from string
}

func (a *apiConn) String() string {
	return "through the Management API of " + a.c.server + ", from " + a.from
}

func (a *apiConn) close() {}

func (a *apiConn) do(ctx context.Context, o op) ([]byte, error) {
	return a.c.call(ctx, o.method, o.path, o.body)
}

func (a *apiConn) list(ctx context.Context, o op) ([]json.RawMessage, error) {
	return a.c.listAll(ctx, o.path, o.items)
}

// local is the installation's store, opened by the command itself, with
// the services made on it as vigil serve makes them (same seal key).
type local struct {
	db    *store.DB
	where string
	key   []byte
	log   *slog.Logger

	lic  *licensing.Service
	auth *oauth.Server
	ring *reports.KeyRing
}

func openLocal(ctx context.Context, f *storeFlags, stdio Stdio) (*local, error) {
	log := slog.New(slog.NewTextHandler(stdio.Err, &slog.HandlerOptions{Level: slog.LevelWarn}))
	where := "on the store in " + f.data
	if f.database != "" {
		where = "on the store " + redactDSN(f.database)
	}
	db, err := f.openStore(ctx, log)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, where)
	}
	key, err := f.sealKey()
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%w (%s)", err, where)
	}
	return &local{db: db, where: where, key: key, log: log}, nil
}

func (l *local) String() string { return l.where }
func (l *local) close()         { l.db.Close() }

func (l *local) do(ctx context.Context, o op) ([]byte, error) {
	v, err := o.local(ctx, l)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v) // as httpx.WriteJSON encodes it
}

func (l *local) list(ctx context.Context, o op) ([]json.RawMessage, error) {
	b, err := l.do(ctx, o)
	if err != nil {
		return nil, err
	}
	var all []json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, fmt.Errorf("list %s: %w", o.items, err)
	}
	if all == nil {
		all = []json.RawMessage{}
	}
	return all, nil
}

// licensing is the licensing service, as vigil serve makes it: codes
// made here verify there.
func (l *local) licensing(ctx context.Context) (*licensing.Service, error) {
	if l.lic != nil {
		return l.lic, nil
	}
	cfg := licensing.DefaultConfig()
	cfg.Logger = l.log
	var err error
	if cfg.Secret, err = server.LicensingSecret(l.key); err != nil {
		return nil, err
	}
	if l.lic, err = licensing.New(ctx, l.db, cfg); err != nil {
		return nil, err
	}
	return l.lic, nil
}

// oauth is the Management API's token server on the store.
func (l *local) oauth(ctx context.Context) (*oauth.Server, error) {
	if l.auth != nil {
		return l.auth, nil
	}
	cfg := oauth.DefaultConfig()
	cfg.TenantScopes = server.TenantScopes
	var err error
	if cfg.Pepper, err = server.OAuthPepper(l.key); err != nil {
		return nil, err
	}
	if l.auth, err = oauth.New(ctx, l.db, cfg); err != nil {
		return nil, err
	}
	return l.auth, nil
}

// keyRing is the report-signing keys.
func (l *local) keyRing() (*reports.KeyRing, error) {
	if l.ring != nil {
		return l.ring, nil
	}
	var err error
	l.ring, err = reports.NewKeyRing(l.db, l.key)
	return l.ring, err
}

// printItems prints a whole list as the API prints a page of it (the
// last: next_cursor is empty).
func printItems(stdio Stdio, items string, all []json.RawMessage) error {
	return printJSON(stdio.Out, map[string]any{items: all, "next_cursor": ""})
}

// decode reads an answer's JSON into v.
func decode(b []byte, what string, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("the %s answered is not JSON: %w", what, err)
	}
	return nil
}
