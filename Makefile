# The commands a newcomer needs: `make demo` runs a whole federated job on
# real data with local processes; `make test` runs every test (what CI runs).
SHELL := /bin/bash
GO    ?= go
BIN   := $(CURDIR)/bin
# Versions of the code generators; `make proto` installs them into $(BIN).
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -buildid= -X github.com/fedscale/fedscale-go/runtime/version.Version=$(VERSION)
# Packages whose concurrency is tested under the race detector.
RACE_PKGS := ./runtime/aggregator/... ./runtime/executor/... ./runtime/aggregate/... ./runtime/selection/... ./runtime/data/...

.PHONY: all build test test-fast vet fmt-check race fuzz-seeds bench demo proto clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./runtime/cmd/...

## test: everything CI runs: formatting, vet, unit and integration tests,
## the race detector on concurrent packages, and the fuzz seed corpora.
test: fmt-check vet
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -race $(RACE_PKGS)

## test-fast: the inner loop (skips the slow in-process jobs).
test-fast:
	$(GO) test -short ./...

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

bench:
	$(GO) test -run '^$$' -bench . -benchmem -cpu 1 ./runtime/...

## demo: a whole job on real MNIST (or DATASET=fashion) with 1 aggregator
## and 2 executor processes on this machine; no Docker needed.
DATASET ?= mnist
demo: build
	DATASET=$(DATASET) BIN=$(BIN) ./scripts/demo.sh

proto:
	GOBIN=$(BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(BIN) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	cd runtime/proto/fedscalev1 && PATH=$(BIN):$$PATH protoc --go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative fedscale.proto

clean:
	rm -rf $(BIN) build
