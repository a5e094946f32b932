package server_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/vigil-sec/vigil/internal/jobs"
	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

// TestBootstrapConcurrent: servers starting at once on one empty store,
// each with its own connections as separate processes would have, make
// exactly one admin client between them; a later start makes none.
func TestBootstrapConcurrent(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		dsn := storetest.DSN(t, dialect)
		const n = 8
		key := make([]byte, server.SealKeySize)
		servers := make([]*server.Server, n)
		for i := range servers {
			db := storetest.OpenDSN(t, dsn)
			if err := jobs.Migrate(ctx, db, nil); err != nil {
				t.Fatal(err)
			}
			blobs, err := store.NewBlobs(filepath.Join(t.TempDir(), "blobs"))
			if err != nil {
				t.Fatal(err)
			}
			if servers[i], err = server.New(ctx, server.Config{DB: db, Blobs: blobs, SealKey: key, Logger: storetest.Logger(t)}); err != nil {
				t.Fatal(err)
			}
		}
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			mu      sync.Mutex
			created []server.Credentials
		)
		for _, srv := range servers {
			wg.Go(func() {
				<-start
				creds, ok, err := srv.Bootstrap(ctx)
				if err != nil {
					t.Errorf("Bootstrap: %v", err)
					return
				}
				if ok {
					mu.Lock()
					created = append(created, creds)
					mu.Unlock()
				} else if creds != (server.Credentials{}) {
					t.Errorf("Bootstrap made nothing but returned credentials")
				}
			})
		}
		close(start)
		wg.Wait()
		if len(created) != 1 {
			t.Fatalf("%d servers made an admin client, want exactly 1", len(created))
		}
		cs, err := servers[0].OAuth().ListClients(ctx)
		if err != nil || len(cs) != 1 || cs[0].ID != created[0].ClientID {
			t.Errorf("clients in the store: %+v, %v; want only %s", cs, err, created[0].ClientID)
		}
		if _, ok, err := servers[0].Bootstrap(ctx); ok || err != nil {
			t.Errorf("a later Bootstrap = %v, %v; want nothing made", ok, err)
		}
	})
}

// TestBootstrapExistingClients: a store that has clients (made before the
// bootstrap row existed, or by `vigil clients create`) gets no admin.
func TestBootstrapExistingClients(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db, blobs := openStore(t, dialect)
		srv, err := server.New(ctx, server.Config{DB: db, Blobs: blobs, SealKey: make([]byte, server.SealKeySize), Logger: storetest.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := srv.OAuth().CreateClient(ctx, "ci", []string{server.ScopeGateRead}); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := srv.Bootstrap(ctx); ok || err != nil {
			t.Errorf("Bootstrap with a client = %v, %v; want nothing made", ok, err)
		}
		if cs, _ := srv.OAuth().ListClients(ctx); len(cs) != 1 {
			t.Errorf("%d clients, want 1", len(cs))
		}
	})
}

// TestBootstrapAdminAsksForGateScope: the first-start admin client gets a
// gate:read token, as `vigil gate` asks for, and a token for a scope the
// API does not know is refused.
func TestBootstrapAdminAsksForGateScope(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.Open(t, store.SQLite)
	if err := jobs.Migrate(ctx, db, nil); err != nil {
		t.Fatal(err)
	}
	blobs, err := store.NewBlobs(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(ctx, server.Config{DB: db, Blobs: blobs, SealKey: make([]byte, server.SealKeySize), Logger: storetest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	creds, _, err := srv.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(srv.Handler())
	t.Cleanup(ts.Close)
	octx := context.WithValue(ctx, oauth2.HTTPClient, ts.Client())
	cc := clientcredentials.Config{ClientID: creds.ClientID, ClientSecret: creds.ClientSecret, TokenURL: ts.URL + "/oauth2/token", Scopes: []string{server.ScopeGateRead}}
	tok, err := cc.Token(octx)
	if err != nil {
		t.Fatalf("admin client asking for %s: %v", server.ScopeGateRead, err)
	}
	if got := tok.Extra("scope"); got != server.ScopeGateRead {
		t.Errorf("token scope %v, want %s", got, server.ScopeGateRead)
	}
	cc.Scopes = []string{"nonsense:write"}
	if _, err := cc.Token(octx); err == nil || !strings.Contains(err.Error(), "invalid_scope") {
		t.Errorf("admin client asking for an unknown scope: %v, want invalid_scope", err)
	}
}
