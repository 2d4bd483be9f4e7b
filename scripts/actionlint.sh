#!/usr/bin/env bash
# scripts/actionlint.sh [FILE...] — lint the GitHub Actions workflows with
# actionlint (github.com/rhysd/actionlint, pinned in tools/actionlint/go.mod),
# exit non-zero on any finding. Default: every .github/workflows/*.y*ml.
#
# actionlint is built once per pinned version into
#   ${FEDSCALE_TOOLS_CACHE:-$HOME/.cache/fedscale-tools}/actionlint-<version>/bin
# (flock-guarded, atomic rename, like scripts/tools.sh), from the helper module
# tools/actionlint, never the product's go.mod. Bump the pin with
#   (cd tools/actionlint && go get -tool github.com/rhysd/actionlint/cmd/actionlint@vX.Y.Z && go mod tidy)
#
# actionlint's shellcheck and pyflakes integrations are off by default, so the
# result does not depend on what happens to be installed (CI runners ship a
# ShellCheck, these VMs may not): ACTIONLINT_SHELLCHECK=1 turns ShellCheck on
# (the one on PATH). Other actionlint flags: ACTIONLINT_FLAGS.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${FEDSCALE_TOOLS_CACHE:-$HOME/.cache/fedscale-tools}
MODDIR=$ROOT/tools/actionlint
GO=${GO:-go}
if ! command -v "$GO" >/dev/null 2>&1; then
	GO=/usr/local/go/bin/go # non-login shells (CI, sudo) may lack it on PATH
fi

die() {
	echo "actionlint.sh: $*" >&2
	exit 1
}

version=$(sed -nE 's#^[[:space:]]*(require[[:space:]]+)?github\.com/rhysd/actionlint[[:space:]]+(v[^[:space:]]+).*#\2#p' "$MODDIR/go.mod" | head -n1)
[ -n "$version" ] || die "no github.com/rhysd/actionlint requirement in $MODDIR/go.mod"
keydir=$CACHE/actionlint-$version
bin=$keydir/bin/actionlint

if [ ! -x "$bin" ]; then
	mkdir -p "$keydir/bin"
	exec {lockfd}>"$keydir/.lock"
	flock -w 600 "$lockfd" || die "timed out waiting for the build lock $keydir/.lock"
	if [ ! -x "$bin" ]; then # a concurrent caller may have built it meanwhile
		tmp=$(mktemp -d "$keydir/.build.XXXXXX") # same filesystem: mv is a rename
		trap 'rm -rf "$tmp"' EXIT
		echo "actionlint.sh: building actionlint $version into $keydir/bin ..." >&2
		# GOWORK=off, -mod=readonly: exactly what tools/actionlint pins.
		(cd "$MODDIR" && CGO_ENABLED=0 GOWORK=off GOFLAGS=-mod=readonly \
			"$GO" build -trimpath -ldflags "-s -w -X github.com/rhysd/actionlint.version=$version" \
			-o "$tmp/actionlint" github.com/rhysd/actionlint/cmd/actionlint) >&2
		mv -f "$tmp/actionlint" "$bin"
	fi
	exec {lockfd}>&-
fi

cd "$ROOT"
if [ $# -eq 0 ]; then
	shopt -s nullglob
	set -- .github/workflows/*.yml .github/workflows/*.yaml
	[ $# -gt 0 ] || die "no workflows in .github/workflows"
fi
flags=(-pyflakes=)
if [ "${ACTIONLINT_SHELLCHECK:-0}" = 1 ]; then
	command -v shellcheck >/dev/null || die "ACTIONLINT_SHELLCHECK=1 but no shellcheck on PATH"
	flags+=(-shellcheck=shellcheck)
else
	flags+=(-shellcheck=)
fi
# shellcheck disable=SC2086 # ACTIONLINT_FLAGS is a list of words
"$bin" "${flags[@]}" ${ACTIONLINT_FLAGS:-} "$@"
