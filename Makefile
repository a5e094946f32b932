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

.PHONY: build test vet fmt-check bench run clean

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

bench: build
	./bench/run.sh

clean:
	rm -rf bin .bench
