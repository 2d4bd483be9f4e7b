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
RACE_PKGS := ./runtime/aggregator/... ./runtime/executor/... ./runtime/aggregate/... ./runtime/selection/... ./runtime/data/... ./launcher/...

.PHONY: all build test test-arm64 test-fast vet staticcheck shellcheck fmt-check bench demo examples proto clean infra images pin

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./runtime/cmd/... ./builder/cmd/... ./launcher/cmd/...

## infra: the daemons the integration tests use: buildkitd and a Kubernetes
## control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok
## with fake GPU nodes) with one real node (containerd, kubelet, CoreDNS;
## root only), all built from their Go modules into a version-keyed cache on
## first use (in parallel; about 15-25 minutes cold on 2 cores, seconds
## after), NVRTC from Debian's non-free packages for the CUDA kernels'
## compile check (scripts/tools.sh nvrtc), the Docker engine (when installed; .ci/run installs it) and, as
## root, two more engines in one swarm for the multi-host Docker tests.
infra:
	@./scripts/devinfra.sh tools $$(./scripts/devinfra.sh infra-tools) nvrtc >/dev/null
	@./scripts/buildkitd.sh start >/dev/null
	@./scripts/kube.sh start >/dev/null
	@if [ "$$(id -u)" = 0 ]; then ./scripts/node.sh start >/dev/null; \
		else echo "make: not root: no real node (its tests will skip; CI runs as root)"; fi
	@./scripts/dockerd.sh start || echo "make: no Docker engine: Docker tests will skip (CI installs it: scripts/dockerd.sh install)"
	@if [ "$$(id -u)" = 0 ]; then ./scripts/swarm.sh start >/dev/null || echo "make: no Docker swarm: its tests will skip (fail under CI)"; \
		else echo "make: not root: no Docker swarm (its tests will skip; CI runs as root)"; fi

## infra-stop: stops what `make infra` started: the real node (drained;
## its bridges, iptables rules, mounts and processes removed), the swarm's
## two engines (namespaces, data, cgroups removed), the control plane (etcd
## wiped) and buildkitd. The Docker engine stays.
infra-stop:
	@if [ "$$(id -u)" = 0 ]; then ./scripts/node.sh stop; ./scripts/swarm.sh stop; fi
	@./scripts/kube.sh stop
	@./scripts/buildkitd.sh stop

# The addresses the integration tests read (see internal/infratest).
INFRA_ENV = BUILDKIT_HOST=$$(./scripts/buildkitd.sh addr) FEDSCALE_KUBECONFIG=$$(./scripts/kube.sh kubeconfig) \
	FEDSCALE_NODE_CONTAINERD=$$(./scripts/node.sh status >/dev/null 2>&1 && ./scripts/node.sh addr) \
	FEDSCALE_SWARM="$$(./scripts/swarm.sh status >/dev/null 2>&1 && ./scripts/swarm.sh addr)" \
	FEDSCALE_NVRTC=$$(./scripts/tools.sh nvrtc 2>/dev/null | tail -n1)

.PHONY: infra-stop kubeconfig images-node

## kubeconfig: the test cluster's kubeconfig path (`make -s kubeconfig`).
kubeconfig:
	@./scripts/kube.sh kubeconfig

## images-node: both runtime images for this machine on the real node
## (fsbuild's OCI layout imported into its containerd; nothing is pulled).
images-node: infra
	@rm -rf $(BIN)/oci-node
	BUILDKIT_HOST=$$(./scripts/buildkitd.sh addr) $(GO) run ./builder/cmd/fsbuild all --output oci=$(BIN)/oci-node
	./scripts/node.sh import $(BIN)/oci-node

## test: everything CI runs: formatting, vet, staticcheck, shellcheck,
## actionlint, unit and integration tests, the race detector on concurrent
## packages, and the fuzz seed corpora.
test: fmt-check vet staticcheck shellcheck actionlint infra
	$(INFRA_ENV) $(GO) test -count=1 -timeout 30m ./...
	$(INFRA_ENV) $(GO) test -count=1 -race $(RACE_PKGS)

## test-arm64: the arm64 build of the matrix kernels (NEON) against the
## pure-Go one, under qemu-user (apt-get install qemu-user); CI runs it.
test-arm64:
	GOARCH=arm64 $(GO) test -count=1 -exec qemu-aarch64 ./runtime/model/cpu/sgemm/

## test-fast: the inner loop (skips the slow in-process jobs).
test-fast:
	$(GO) test -short ./...

vet:
	$(GO) vet ./...
	$(GO) vet -tags cuda ./runtime/cmd/executor/  # the CUDA variant's files

## staticcheck: honnef.co/go/tools pinned in tools/staticcheck, built once
## into the tool cache by scripts/tools.sh; any finding fails.
staticcheck:
	@bin=$$(./scripts/tools.sh staticcheck) && "$$bin/staticcheck" ./... && "$$bin/staticcheck" -tags cuda ./runtime/cmd/executor/

## shellcheck: every shell script in the tree (Debian's shellcheck;
## .ci/run installs it); any finding fails.
shellcheck:
	@command -v shellcheck >/dev/null || { echo "make: shellcheck is not installed: apt-get install shellcheck" >&2; exit 1; }
	shellcheck $$(git ls-files '*.sh') .ci/run

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

bench:
	$(GO) test -run '^$$' -bench . -benchmem -cpu 1 ./runtime/...

## demo: a whole job on real MNIST (or DATASET=fashion) with 1 aggregator
## and 2 executor processes on this machine; no Docker needed.
DATASET ?= mnist
MODEL   ?= mlp
demo: build
	DATASET=$(DATASET) MODEL=$(MODEL) BIN=$(BIN) ./scripts/demo.sh

## examples: FedScale's own container example jobs (femnist_k8s,
## femnist_docker, cifar_cpu_k8s, dry_run_k8s) for all their rounds as
## local processes on Fashion-MNIST (make test runs a few rounds of each).
examples:
	FEDSCALE_EXAMPLES_FULL=1 $(GO) test -count=1 -run TestFedScaleExamples -v -timeout 60m ./runtime/cmd/aggregator

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

.PHONY: release-dryrun actionlint

## release-dryrun: the release workflow (.github/workflows/release.yml) on
## this machine: both images, linux/amd64+arm64, CPU and CUDA (on a stand-in
## base) pushed to a local registry with the workflow's own fsbuild calls
## (scripts/release.sh), pulled back and checked; plus the release binaries
## and notes. Starts buildkitd as `make infra` does unless $BUILDKIT_HOST is set.
release-dryrun:
	./scripts/release-dryrun.sh

## actionlint: lint .github/workflows with actionlint (built once from
## tools/actionlint into the tools cache).
actionlint:
	./scripts/actionlint.sh

.PHONY: e2e

## e2e: the end-to-end suites (e2e/, also part of `make test`): both images
## built by fsbuild into the Docker engine, whole federated jobs on real MNIST
## in containers through testcontainers-go (full job, killed executor,
## restarted aggregator) and through `launcher --backend docker`; a leak check
## at the end; a whole job on the real Kubernetes node (as root).
## FEDSCALE_E2E_SCALE=1 adds the 1+8-executor job.
e2e: infra
	$(INFRA_ENV) $(GO) test -count=1 -v -timeout 30m ./e2e/

.PHONY: golden golden-check bench-torch bench-fedscale

# Debian's python3, where apt's python3-torch and python3-torchvision live
# (a pyenv or venv python3 earlier on PATH would lack them).
GOLDEN_PYTHON ?= /usr/bin/python3
GOLDEN_DIR    := runtime/model/cpu/testdata/golden

## golden: regenerate the golden fixtures that runtime/model/cpu's golden
## test checks every model against: PyTorch (python3-torch 1.13 and
## python3-torchvision 0.14 from Debian bookworm) training each model
## 3 steps from generated weights (scripts/golden/golden.py).
golden:
	$(GOLDEN_PYTHON) scripts/golden/golden.py --out $(GOLDEN_DIR)

## golden-check: regenerate the fixtures into a temporary directory and fail
## if any drifted from the committed ones beyond rounding noise
## (internal/cmd/goldendiff; CI's golden job runs it); then check that
## PyTorch loads our safetensors files and we load PyTorch's.
golden-check:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
		$(GOLDEN_PYTHON) scripts/golden/golden.py --out "$$tmp" && \
		$(GO) run ./internal/cmd/goldendiff $(GOLDEN_DIR) "$$tmp"
	$(GOLDEN_PYTHON) scripts/golden/check_safetensors.py roundtrip

## bench-torch: one training step (batch 20 of 3x32x32, one thread) of
## resnet18, mobilenet_v2 and shufflenet_v2_x2_0 with our CPU backend and
## with PyTorch (scripts/golden/bench_torch.py) in the same run, as the
## README's table with ratios (internal/cmd/speedtable).
bench-torch:
	$(GO) run ./internal/cmd/speedtable --python $(GOLDEN_PYTHON)

## bench-fedscale: the original FedScale (its source from the mirror, Debian's
## torch) and ours on femnist_k8s.yml with 20 local steps, one after the
## other; see scripts/fedscale-ref/run.sh for what it needs.
bench-fedscale:
	./scripts/fedscale-ref/run.sh
