# Vigil's build, test and benchmark entry points.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS  := -X github.com/vigil-sec/vigil/internal/version.Version=$(VERSION)
BIN      := bin/vigil
TARGET   ?= .
# The race detector slows the scan engines a lot; RACE= turns it off.
RACE     ?= -race
# Packages tested without the race detector: internal/server runs whole
# servers with real scans on both databases, and under -race it neared
# the 30-minute timeout on CI's two cores. Its concurrency (River, the
# job runners, the rate limiters) is also exercised by packages that keep
# -race (internal/jobs, internal/httpx, ci, reports, internal/cli).
NORACE   := github.com/vigil-sec/vigil/internal/server

.PHONY: build test vet fmt-check bench run clean image image-sbom

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/vigil

run: build
	./$(BIN) scan $(TARGET)

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

test: vet fmt-check
	$(GO) test $(RACE) -timeout 30m $$($(GO) list ./... | grep -vxF $(NORACE))
	$(GO) test -timeout 30m $(NORACE)
	cd examples && $(GO) vet ./... && $(GO) test -timeout 15m ./...

# The container image, built without a container engine (tools/mkimage,
# go-containerregistry): Debian's git and CA certificates, this machine's Go
# toolchain (the SAST engine runs the go command), a static vigil.
IMAGE_REF ?= vigil:$(subst +,-,$(VERSION))
image:
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/vigil-linux-amd64 ./cmd/vigil
	$(GO) run ./tools/mkimage build --binary bin/vigil-linux-amd64 --goroot "$$($(GO) env GOROOT)" \
		--ref $(IMAGE_REF) --version $(VERSION) --revision "$$(git rev-parse HEAD 2>/dev/null)" \
		--out bin/image --tar bin/vigil-image.tar

# The image scanned by Vigil itself (its gate must pass) and its SBOM
# attached to it in the layout as an OCI 1.1 referrer.
image-sbom: build
	./$(BIN) scan -q --engines sbom -o table -o cyclonedx-json=bin/image.cdx.json oci:bin/image
	$(GO) run ./tools/mkimage attach-sbom --layout bin/image --sbom bin/image.cdx.json

bench: build
	./bench/run.sh

clean:
	rm -rf bin .bench
