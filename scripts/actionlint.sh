#!/usr/bin/env bash
# scripts/actionlint.sh [FILE...] — lint the GitHub Actions workflows with
# actionlint (github.com/rhysd/actionlint, pinned in tools/actionlint/go.mod,
# built once per version by scripts/tools.sh), exit non-zero on any finding.
# Default: every workflow of the repository (actionlint finds them).
#
# actionlint's shellcheck and pyflakes integrations are off by default, so the
# result does not depend on what happens to be installed (CI runners ship a
# ShellCheck, these VMs may not): ACTIONLINT_SHELLCHECK=1 turns ShellCheck on
# (the one on PATH). Other actionlint flags: ACTIONLINT_FLAGS.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=$(scripts/tools.sh actionlint)
shellcheck=-shellcheck=
if [ "${ACTIONLINT_SHELLCHECK:-0}" = 1 ]; then shellcheck=-shellcheck=shellcheck; fi
# shellcheck disable=SC2086 # ACTIONLINT_FLAGS is a list of words
exec "$bin/actionlint" -pyflakes= "$shellcheck" ${ACTIONLINT_FLAGS:-} "$@"
