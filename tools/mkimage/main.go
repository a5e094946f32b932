// Command mkimage builds Vigil's container image without a container
// engine (`make image`) and attaches an SBOM to it (`make image-sbom`).
// It is a build tool of this repository, not part of Vigil.
//
//	mkimage build --binary bin/vigil-linux-amd64 --out bin/image --tar bin/vigil-image.tar
//	mkimage attach-sbom --layout bin/image --sbom bin/image.cdx.json
//	mkimage layers --tar bin/vigil-image.tar
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/vigil-sec/vigil/internal/imagebuild"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "build":
		err = build(ctx, os.Args[2:])
	case "attach-sbom":
		err = attach(os.Args[2:])
	case "layers":
		err = listLayers(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: mkimage build|attach-sbom|layers [flags] (-h for the flags)")
	os.Exit(2)
}

func build(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("build", flag.ExitOnError)
	binary := fs.String("binary", "", "the vigil binary to put in the image (build it with CGO_ENABLED=0)")
	out := fs.String("out", "bin/image", "the OCI layout to write (replaced)")
	tarPath := fs.String("tar", "bin/vigil-image.tar", "the image tarball to write (docker save's format); empty for none")
	ref := fs.String("ref", "vigil:devel", "the image's name and tag, recorded in the layout and the tarball")
	goroot := fs.String("goroot", "", "the Go toolchain to put in the image (the SAST engine runs the go command); empty for none")
	debian := fs.String("debian", strings.Join(imagebuild.DefaultDebianRoots, ","), "Debian packages (with what they depend on) for the base layer; empty for none")
	exclude := fs.String("debian-exclude", strings.Join(imagebuild.DefaultDebianExclude, ","), "dependencies left out of the base layer")
	cache := fs.String("cache", "bin/.image-cache", "where Debian packages are downloaded")
	version := fs.String("version", "devel", "Vigil's version, for the image's labels")
	revision := fs.String("revision", "", "the commit built, for the image's labels")
	fs.Parse(args)
	if *binary == "" {
		return fmt.Errorf("--binary is required")
	}

	created := time.Unix(0, 0).UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH=%q: not a number of seconds", s)
		}
		created = time.Unix(sec, 0).UTC()
	}

	var pkgs []imagebuild.Package
	if *debian != "" {
		names, err := imagebuild.ResolveDebian(ctx, split(*debian), split(*exclude))
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "mkimage: %d Debian packages: %s\n", len(names), strings.Join(names, " "))
		if pkgs, err = imagebuild.FetchDebian(ctx, *cache, names); err != nil {
			return err
		}
	}
	work, err := os.MkdirTemp(filepath.Dir(*out), ".mkimage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	img, err := imagebuild.Build(ctx, imagebuild.Options{
		Binary: *binary, GoRoot: *goroot, Debian: pkgs, Version: *version,
		Source: "https://github.com/vigil-sec/vigil", Revision: *revision,
		Created: created, WorkDir: work,
	})
	if err != nil {
		return err
	}
	if err := imagebuild.Write(img, *ref, *out, *tarPath); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "mkimage: %s %s written to %s", *ref, digest, *out)
	if *tarPath != "" {
		fmt.Fprintf(os.Stderr, " and %s", *tarPath)
	}
	fmt.Fprintln(os.Stderr)
	fmt.Println(digest)
	return nil
}

func attach(args []string) error {
	fs := flag.NewFlagSet("attach-sbom", flag.ExitOnError)
	dir := fs.String("layout", "bin/image", "the OCI layout holding the image")
	sbom := fs.String("sbom", "", "the SBOM file to attach")
	format := fs.String("format", "cyclonedx-json", "the SBOM's format: cyclonedx-json or spdx-json")
	fs.Parse(args)
	mt, ok := imagebuild.SBOMMediaTypes[*format]
	if !ok || *sbom == "" {
		return fmt.Errorf("--sbom FILE and --format cyclonedx-json|spdx-json are required (format %q)", *format)
	}
	digest, err := imagebuild.AttachSBOM(*dir, *sbom, mt)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "mkimage: %s attached to the image in %s as %s\n", *sbom, *dir, digest)
	return nil
}

// listLayers prints the layer files of an image tarball (docker save's
// format), bottom first, for unpacking it without a container engine.
func listLayers(args []string) error {
	fs := flag.NewFlagSet("layers", flag.ExitOnError)
	path := fs.String("tar", "bin/vigil-image.tar", "the image tarball")
	fs.Parse(args)
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(*path) })
	if err != nil {
		return fmt.Errorf("%s: %w", *path, err)
	}
	if len(m) != 1 {
		return fmt.Errorf("%s holds %d images, want one", *path, len(m))
	}
	for _, l := range m[0].Layers {
		fmt.Println(l)
	}
	return nil
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
