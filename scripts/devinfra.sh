#!/usr/bin/env bash
# scripts/devinfra.sh ARGS... — run this checkout's devinfra command
# (internal/cmd/devinfra, logic in internal/devinfra): pinned tool builds,
# buildkitd, the Kubernetes control plane, the Docker engine. tools.sh,
# buildkitd.sh, kube.sh and dockerd.sh exec it.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GO=${GO:-go}
command -v "$GO" >/dev/null 2>&1 || GO=/usr/local/go/bin/go # non-login shells (CI, sudo)
# go build relinks only when the code changed; with its temporary files in
# bin/ too (GOTMPDIR) the final move is a rename, so a concurrent caller
# never runs half a binary.
mkdir -p "$ROOT/bin"
GOTMPDIR=$ROOT/bin "$GO" -C "$ROOT" build -o "$ROOT/bin/devinfra" ./internal/cmd/devinfra
exec "$ROOT/bin/devinfra" --root "$ROOT" "$@"
