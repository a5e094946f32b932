// Package server is `vigil serve`: the Management API under /api/v1, the
// gate, the push and registry webhooks, the Kubernetes admission webhook
// and the scan worker, on one store and one job queue.
//
//	srv, err := server.New(ctx, server.Config{DB: db, Blobs: blobs, SealKey: key})
//	creds, created, err := srv.Bootstrap(ctx) // the admin client of an empty store
//	srv.Start(ctx)                            // River workers in this process
//	httpx.Serve(ctx, httpx.NewServer(httpx.ServerConfig{Handler: srv.Handler()}), ln, true)
//	srv.Stop(ctx)                             // running scans get the grace period
//
// A scan is a row in the store (one per project and commit, one per image
// digest) and a River job that runs it (RunScan). A finished scan leaves a
// manifest blob naming its Vigil JSON, SARIF, CycloneDX and SPDX blobs. The
// gate is computed when asked, from the stored result, the project's latest
// policy and, for commits off the default branch, the default branch's
// latest succeeded scan as baseline.
package server
