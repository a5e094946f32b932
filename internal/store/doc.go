// Package store is Vigil's persistence: the SQL database (a SQLite file by
// default, PostgreSQL at scale) and content-addressed blob files.
//
// Open picks the dialect from the DSN and gives both the same schema and
// the same typed API. Migrate applies the embedded, versioned schema; the
// job queue's tables are migrated by package jobs on the same database.
//
//	db, err := store.Open(ctx, "vigil-data/vigil.db", store.WithMigrate())
//	p, err := db.CreateProject(ctx, store.Project{Name: "api"})
//	scan, created, err := db.EnqueueScan(ctx, store.NewScan{Kind: store.KindCommit, ProjectID: p.ID, CommitSHA: sha})
//
// A scan moves queued → running → succeeded or failed (see Status). Its
// result lives in Blobs; the scan row keeps the blob key.
//
// Errors: ErrNotFound, ErrConflict and ErrInvalid are for callers to map to
// HTTP statuses and exit codes, and their messages are safe to show. Any
// other error, and the full text of a wrapped one, may quote SQL and
// database messages: log it, never show it.
//
// Tests use package storetest, which gives each test a fresh database of
// each dialect.
package store
