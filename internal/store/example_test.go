package store_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/store"
)

// A trigger delivered twice finds the scan the first one made.
func ExampleDB_EnqueueScan() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "vigil-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	db, err := store.Open(ctx, filepath.Join(dir, "vigil.db"), store.WithMigrate())
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	p, err := db.CreateProject(ctx, ci.Project{Name: "api", DefaultBranch: "main"})
	if err != nil {
		log.Fatal(err)
	}
	push := ci.NewScan{Kind: ci.KindCommit, ProjectID: p.ID, CommitSHA: strings.Repeat("ab", 20)}
	first, created, err := db.EnqueueScan(ctx, push)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(first.Status, created)
	again, created, err := db.EnqueueScan(ctx, push)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(again.ID == first.ID, created)
	// Output:
	// queued true
	// true false
}

func ExampleBlobs_Put() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "vigil-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	blobs, err := store.NewBlobs(dir)
	if err != nil {
		log.Fatal(err)
	}
	key, size, err := blobs.Put(ctx, strings.NewReader("hello"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(key, size)
	// Output:
	// sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824 5
}
