# Vigil's build, test and benchmark entry points.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS  := -X github.com/vigil-sec/vigil/internal/version.Version=$(VERSION)
BIN      := bin/vigil
TARGET   ?= .
# The race detector slows the scan engines a lot; RACE= turns it off.
RACE     ?= -race

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
	$(GO) test $(RACE) -timeout 30m ./...

bench: build
	./bench/run.sh

clean:
	rm -rf bin .bench
