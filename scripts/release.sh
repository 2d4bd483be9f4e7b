#!/usr/bin/env bash
# scripts/release.sh images|binaries|notes|sign — the steps of a release that
# are not GitHub plumbing, so .github/workflows/release.yml and
# `make release-dryrun` run the very same code: internal/cmd/release (its
# doc lists the steps, flags and environment; internal/release says what a
# release builds). internal/release's test runs release.yml's steps against
# this script and compares the fsbuild calls with the dry-run's.
#
#   scripts/release.sh images OUT [FSBUILD FLAG...]
#   scripts/release.sh binaries OUT
#   scripts/release.sh notes OUT
#   scripts/release.sh sign OUT
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec "${GO:-go}" run ./internal/cmd/release "$@"
