#!/usr/bin/env bash
# scripts/release-dryrun.sh [--plan] — `make release-dryrun`: the release
# workflow (.github/workflows/release.yml) run on this machine against a
# local registry instead of Docker Hub, end to end, then verified by pulling
# every image back: `release dryrun` of internal/cmd/release (its doc lists
# the steps). --plan only makes (or prints) the fsbuild calls.
#
# Output: ${RELEASE_DRYRUN_OUT:-build/release-dryrun}/{digests.txt,notes.md,dist/}.
# Env: GO, FSBUILD, BUILDKIT_HOST, RELEASE_DRYRUN_BINARIES=0.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
GO=${GO:-go}
command -v "$GO" >/dev/null || GO=/usr/local/go/bin/go # non-login shells may lack it on PATH
export GO
exec "$GO" run ./internal/cmd/release dryrun "$@"
