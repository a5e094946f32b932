// Command download measures, for `make bench`, the download of a report
// bundle through a secure link against Go's http.FileServer serving the
// same file on the same machine, both over HTTPS (the same TLS setup,
// HTTP/1.1, one connection per download): throughput, and memory, which
// must stay flat in the bundle's size (bytes allocated per download, and
// the Go heap's peak while downloading).
//
// The link is served by the whole server (internal/server: its
// middleware, the store on SQLite, the link service counting the
// download) from a bundle of -size-mb megabytes built by reports/bundle
// and kept in a directory (reports/bundle/bundletest), and downloaded
// with POST /r/{token}/download, whole and in -ranges parallel ranges.
// The client is a Go client in the same process, for both servers.
//
//	go run ./bench/download -work /tmp/dl -size-mb 200
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/internal/jobs"
	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/licensing"
	"github.com/vigil-sec/vigil/reports"
	"github.com/vigil-sec/vigil/reports/bundle"
	"github.com/vigil-sec/vigil/reports/bundle/bundletest"
)

func main() {
	work := flag.String("work", "", "a scratch directory (emptied first)")
	sizeMB := flag.Int("size-mb", 200, "the size of the bundle's one big file, in MB")
	rounds := flag.Int("rounds", 3, "downloads of each kind; the median is reported")
	ranges := flag.Int("ranges", 4, "parallel ranges of the split download through the link")
	flag.Parse()
	if *work == "" {
		log.Fatal("download: -work is required")
	}
	ctx := context.Background()
	must(os.RemoveAll(*work))
	must(os.MkdirAll(*work, 0o700))

	zip, token, handler := setup(ctx, *work, *sizeMB)
	st, err := os.Stat(zip)
	must(err)
	size := st.Size()

	// The same TLS setup for both: httptest's certificate, HTTP/1.1.
	link := httptest.NewUnstartedServer(handler)
	link.StartTLS()
	defer link.Close()
	files := httptest.NewUnstartedServer(http.FileServer(http.Dir(filepath.Dir(zip))))
	files.StartTLS()
	defer files.Close()

	linkURL := link.URL + "/r/" + token + "/download"
	fileURL := files.URL + "/" + filepath.Base(zip)
	client := func(s *httptest.Server) *http.Client {
		c := s.Client()
		c.Transport.(*http.Transport).DisableKeepAlives = true // one connection, one download
		return c
	}

	fmt.Printf("== download: a %.0f MB bundle over HTTPS, %d rounds each (median), GOMAXPROCS %d\n", float64(size)/1e6, *rounds, runtime.GOMAXPROCS(0))
	var lk, fs, split []result
	for range *rounds { // alternate, so that a noisy neighbour hurts both
		lk = append(lk, measure(size, func() int64 { return get(client(link), "POST", linkURL, "") }))
		fs = append(fs, measure(size, func() int64 { return get(client(files), "GET", fileURL, "") }))
		split = append(split, measure(size, func() int64 { return parallel(client(link), linkURL, size, *ranges) }))
	}
	l, f, s := median(lk), median(fs), median(split)
	fmt.Printf("%-44s %9s %14s %14s\n", "", "MB/s", "alloc/download", "heap peak")
	row := func(name string, r result) {
		fmt.Printf("%-44s %9.0f %10.0f KiB %10.1f MiB\n", name, r.mbps, float64(r.alloc)/1024, float64(r.heapPeak)/(1<<20))
	}
	row("link, POST /r/{token}/download", l)
	row(fmt.Sprintf("link, %d parallel ranges", *ranges), s)
	row("http.FileServer, GET", f)
	var ru syscall.Rusage
	must(syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	fmt.Printf("%-44s %9.2f   (target >= 0.80)\n", "throughput ratio, link / FileServer", l.mbps/f.mbps)
	fmt.Printf("%-44s %9.0f MiB (bundle %.0f MiB; the process holds the bundle's build too)\n", "peak RSS of the process", float64(ru.Maxrss)/1024, float64(size)/(1<<20))
}

// setup makes a server with a bundle store on a SQLite store in work, a
// tenant entitled to a product, an approved ticket, the bundle (one file
// of random bytes, so that it stays sizeMB) and a link to it; it returns
// the bundle's file, the link's token and the server's handler.
func setup(ctx context.Context, work string, sizeMB int) (zip, token string, h http.Handler) {
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(work, "vigil.db"), store.WithMigrate())
	must(err)
	must(jobs.Migrate(ctx, db, nil))
	blobs, err := store.NewBlobs(filepath.Join(work, "blobs"))
	must(err)
	must(os.MkdirAll(filepath.Join(work, "bundles"), 0o700))
	bs, err := bundletest.New(filepath.Join(work, "bundles"))
	must(err)
	key := make([]byte, server.SealKeySize)
	rand.Read(key)
	srv, err := server.New(ctx, server.Config{DB: db, Blobs: blobs, SealKey: key, Bundles: bs,
		Logger: slog.New(slog.DiscardHandler), Outbound: &httpx.OutboundPolicy{Schemes: []string{"https"}}})
	must(err)
	admin, _, err := srv.Bootstrap(ctx)
	must(err)
	staff := reports.Actor{ClientID: admin.ClientID, Staff: true}
	lic := srv.Licensing()
	_, err = lic.CreateProduct(ctx, "app", "App")
	must(err)
	tn, err := lic.CreateTenant(ctx, "Bench Corp")
	must(err)
	_, err = lic.CreateEntitlement(ctx, licensing.NewEntitlement{TenantID: tn.ID, ProductID: "app", Seats: 1})
	must(err)
	tk, err := srv.Tickets().Open(ctx, staff, reports.NewTicket{TenantID: tn.ID, Products: []string{"app"}, Subject: "Report", Message: "Bench."})
	must(err)
	_, err = srv.Tickets().Approve(ctx, staff, "1", "")
	must(err)

	filler := filepath.Join(work, "filler.bin")
	f, err := os.Create(filler)
	must(err)
	rng := mrand.NewChaCha8([32]byte{1})
	_, err = io.CopyN(f, rng, int64(sizeMB)*1_000_000)
	must(err)
	start := time.Now()
	b, err := bs.Add(ctx, reports.Bundle{TenantID: tn.ID, TenantName: "Bench Corp", TicketID: tk.ID, Ticket: "1", ProductID: "app", ProductName: "App", Version: "1.0.0"},
		bundle.File{Name: "filler.bin", Size: int64(sizeMB) * 1_000_000, Content: f},
		bundle.Bytes("sbom.cdx.json", []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6"}`)))
	must(err)
	must(f.Close())
	must(os.Remove(filler))
	fmt.Printf("   (bundle built in %.1f s)\n", time.Since(start).Seconds())
	_, token, err = srv.Links().Create(ctx, staff, reports.NewLink{Ticket: "1", BundleID: b.ID, LinkOptions: reports.LinkOptions{MaxDownloads: reports.MaxLinkDownloads}})
	must(err)
	return bs.Path(b.ID), token, srv.Handler()
}

// result is one download's figures.
type result struct {
	mbps     float64
	alloc    uint64 // bytes allocated by the process during the download
	heapPeak uint64 // the Go heap in use at its highest, sampled
}

// measure runs one download (fn returns the bytes received) and samples
// the heap while it runs.
func measure(size int64, fn func() int64) result {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		var m runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
		}
	}()
	start := time.Now()
	n := fn()
	d := time.Since(start)
	close(done)
	runtime.ReadMemStats(&after)
	if n != size {
		log.Fatalf("download: got %d bytes, want %d", n, size)
	}
	return result{mbps: float64(n) / 1e6 / d.Seconds(), alloc: after.TotalAlloc - before.TotalAlloc, heapPeak: max(peak.Load(), after.HeapInuse)}
}

// get downloads url (with a Range when rng is set) and returns the bytes.
func get(c *http.Client, method, url, rng string) int64 {
	req, err := http.NewRequest(method, url, nil)
	must(err)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := c.Do(req)
	must(err)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		log.Fatalf("download: %s %s: %d %s", method, url, resp.StatusCode, bytes.TrimSpace(b))
	}
	n, err := io.Copy(io.Discard, resp.Body)
	must(err)
	return n
}

// parallel downloads url in n ranges at once, as a download manager.
func parallel(c *http.Client, url string, size int64, n int) int64 {
	var (
		wg    sync.WaitGroup
		total atomic.Int64
	)
	part := int64(math.Ceil(float64(size) / float64(n)))
	for i := range n {
		from, to := int64(i)*part, min(int64(i+1)*part, size)-1
		wg.Go(func() { total.Add(get(c, "POST", url, fmt.Sprintf("bytes=%d-%d", from, to))) })
	}
	wg.Wait()
	return total.Load()
}

func median(rs []result) result {
	slices.SortFunc(rs, func(a, b result) int {
		switch {
		case a.mbps < b.mbps:
			return -1
		case a.mbps > b.mbps:
			return 1
		}
		return 0
	})
	return rs[len(rs)/2]
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
