# The commands a newcomer needs: `make demo` runs a whole federated job on
# real data with local processes; `make test` runs every test (what CI runs).
SHELL := /bin/bash
GO    ?= go
BIN   := $(CURDIR)/bin
# Versions of the code generators; `make proto` installs them into $(BIN).
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
# The same tag fsbuild gives images by default, so a built launcher's default
# image references name the images `make images` / fsbuild made from this tree.
VERSION ?= $(shell git describe --tags --always --abbrev=12 --match 'v[0-9]*' 2>/dev/null || echo dev)$(shell test -z "$$(git status --porcelain 2>/dev/null)" || echo -dirty)
LDFLAGS := -s -w -buildid= -X github.com/fedscale/fedscale-go/runtime/version.Version=$(VERSION)
# Packages whose concurrency is tested under the race detector.
RACE_PKGS := ./runtime/aggregator/... ./runtime/executor/... ./runtime/aggregate/... ./runtime/selection/... ./runtime/data/...

.PHONY: all build test test-fast vet fmt-check race fuzz-seeds bench demo proto clean infra images pin

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./runtime/cmd/... ./builder/cmd/... ./launcher/cmd/...

## infra: the daemons the integration tests use: buildkitd (built from its Go
## module into a version-keyed cache on first use, minutes) and the Docker
## engine (when installed; .ci/run installs it).
infra:
	@./scripts/buildkitd.sh start >/dev/null
	@./scripts/dockerd.sh start || echo "make: no Docker engine: Docker tests will skip (CI installs it: scripts/dockerd.sh install)"

## test: everything CI runs: formatting, vet, unit and integration tests,
## the race detector on concurrent packages, and the fuzz seed corpora.
test: fmt-check vet infra
	BUILDKIT_HOST=$$(./scripts/buildkitd.sh addr) $(GO) test -count=1 -timeout 30m ./...
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

## images: both runtime images for this machine, loaded into the Docker engine.
images: infra
	BUILDKIT_HOST=$$(./scripts/buildkitd.sh addr) $(GO) run ./builder/cmd/fsbuild all --output docker

## pin: resolve the nvidia/cuda base digests in dockerfiles/cuda-bases.json
## (needs access to Docker Hub: the release pipeline, not our VMs).
pin:
	$(GO) run ./builder/cmd/fsbuild pin

proto:
	GOBIN=$(BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(BIN) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	cd runtime/proto/fedscalev1 && PATH=$(BIN):$$PATH protoc --go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative fedscale.proto

clean:
	rm -rf $(BIN) build
