// Command imagegen builds the benchmark image for `make bench`: a Debian
// package database, Go binaries with many modules, and incompressible
// filler, a few hundred MB in all. It writes the image as an OCI layout and
// serves it from an in-memory registry on loopback until it is stopped.
package main

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	out := flag.String("out", "", "write the image as an OCI layout into this directory")
	addr := flag.String("serve", "", "serve the image from a registry on this loopback address (127.0.0.1:0 picks a port)")
	fillerMB := flag.Int("filler-mb", 200, "megabytes of random filler")
	dpkg := flag.String("dpkg-status", "/var/lib/dpkg/status", "Debian package database to include")
	var bins multiFlag
	flag.Var(&bins, "bin", "a binary to include under /usr/local/bin (repeatable)")
	flag.Parse()
	if *out == "" {
		log.Fatal("imagegen: -out DIR is required")
	}

	var layers []v1.Layer
	status, err := os.ReadFile(*dpkg)
	if err != nil {
		log.Fatalf("imagegen: reading %s: %v", *dpkg, err)
	}
	layers = append(layers, must(layer(map[string][]byte{"var/lib/dpkg/status": status})))
	files := map[string][]byte{}
	for _, b := range bins {
		data, err := os.ReadFile(b)
		if err != nil {
			log.Fatalf("imagegen: reading %s: %v", b, err)
		}
		files[path.Join("usr/local/bin", path.Base(b))] = data
	}
	if len(files) > 0 {
		layers = append(layers, must(layer(files)))
	}
	filler := map[string][]byte{}
	for i := 0; i < *fillerMB/10; i++ {
		b := make([]byte, 10<<20)
		_, _ = rand.Read(b)
		filler[fmt.Sprintf("opt/filler/blob%03d.bin", i)] = b
	}
	layers = append(layers, must(layer(filler)))

	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		log.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		log.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS, cfg.Created = "amd64", "linux", v1.Time{Time: time.Unix(0, 0)}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.RemoveAll(*out); err != nil {
		log.Fatal(err)
	}
	p, err := layout.Write(*out, empty.Index)
	if err != nil {
		log.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		log.Fatal(err)
	}
	size := int64(0)
	for _, l := range layers {
		s, _ := l.Size()
		size += s
	}
	fmt.Fprintf(os.Stderr, "imagegen: wrote %s (%d layers, %d MB compressed)\n", *out, len(layers), size>>20)

	if *addr == "" {
		return
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0))), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	ref, err := name.ParseReference(ln.Addr().String()+"/bench/image:latest", name.Insecure)
	if err != nil {
		log.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		log.Fatal(err)
	}
	fmt.Println(ref.String()) // the caller reads the reference from stdout
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}

// layer makes an uncompressed tar of files and wraps it as a layer.
func layer(files map[string][]byte) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for name, data := range files {
		for d := path.Dir(name); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
				return nil, err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}

func must(l v1.Layer, err error) v1.Layer {
	if err != nil {
		log.Fatal(err)
	}
	return l
}

type multiFlag []string

func (m *multiFlag) String() string     { return fmt.Sprint(*m) }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }
