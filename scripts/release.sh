#!/usr/bin/env bash
# scripts/release.sh images|binaries|notes|sign — the steps of a release that
# are not GitHub plumbing, in one place, so .github/workflows/release.yml and
# `make release-dryrun` (scripts/release-dryrun.sh) run the very same
# commands. internal/release's test runs release.yml's steps against this
# script and compares the fsbuild calls with the dry-run's.
#
#   scripts/release.sh images OUT [FSBUILD FLAG...]
#       Builds and pushes both images (fedscale-aggr, fedscale-exec), CPU and
#       CUDA, each one index of linux/amd64 and linux/arm64, with fsbuild
#       (provenance and SBOM attached as referrers by fsbuild itself). The
#       FLAGs are added to every fsbuild call and say where the images go:
#       the release passes --repo docker.io/fedscale; the dry-run a local
#       registry (--repo 127.0.0.1:PORT/fedscale --insecure-registry ...).
#       Writes OUT/<set>.digests per call and OUT/digests.txt (all REF@DIGEST
#       lines), and prints the latter.
#   scripts/release.sh binaries OUT
#       fsbuild and launcher for linux and darwin, amd64 and arm64, built the
#       way `make build` builds (the Makefile's LDFLAGS), as OUT/<name>-<os>-<arch>,
#       plus OUT/SHA256SUMS.
#   scripts/release.sh notes OUT
#       OUT/notes.md: the release notes, listing the image digests from
#       OUT/digests.txt and how to verify them.
#   scripts/release.sh sign OUT
#       cosign sign --yes NAME@DIGEST for every line of OUT/digests.txt (the
#       release only: keyless signing needs the workflow's OIDC token).
#
# Env:
#   FSBUILD            the fsbuild command (default: ./builder/cmd/fsbuild built
#                      once as `make build` builds it, so its SBOMs name the version)
#   RELEASE_CUDA_BASE  dry-run only: --base for the CUDA calls (a stand-in for
#                      nvidia/cuda); a release builds on the digest pinned in
#                      dockerfiles/cuda-bases.json
#   GO                 the go command (default: go)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
GO=${GO:-go}

# The release's fsbuild calls: "<set> <fsbuild arguments>", one a line.
# Change them here and both the workflow and the dry-run follow.
PLATFORMS=linux/amd64,linux/arm64
CUDA_VERSION=12.4
BUILDS=(
	"cpu all --push --platform $PLATFORMS --progress plain"
	"cuda all --push --platform $PLATFORMS --progress plain --cuda $CUDA_VERSION"
)
# The binaries attached to a GitHub release, and their platforms.
BINARIES=(fsbuild:./builder/cmd/fsbuild launcher:./launcher/cmd/launcher)
BINARY_PLATFORMS=(linux/amd64 linux/arm64 darwin/amd64 darwin/arm64)

die() {
	echo "release.sh: $*" >&2
	exit 1
}
log() { echo "release.sh: $*" >&2; }

# makefile_ldflags: the Makefile's own LDFLAGS (version stamp included), so
# what this script builds is built exactly like `make build` builds it.
makefile_ldflags() {
	local ldflags
	# shellcheck disable=SC2016 # $(LDFLAGS) is make's to expand, not the shell's
	ldflags=$(make -s --no-print-directory -C "$ROOT" --eval 'release-print-ldflags: ; @echo '\''$(LDFLAGS)'\''' release-print-ldflags)
	[ -n "$ldflags" ] || die "could not read LDFLAGS from the Makefile"
	echo "$ldflags"
}

TMP=""
trap '[ -z "$TMP" ] || rm -rf "$TMP"' EXIT

cmd_images() {
	local out=$1
	shift
	local -a fsbuild
	if [ -n "${FSBUILD:-}" ]; then
		read -r -a fsbuild <<<"$FSBUILD"
	else
		local ldflags
		ldflags=$(makefile_ldflags)
		TMP=$(mktemp -d)
		log "building fsbuild for this machine"
		CGO_ENABLED=0 "$GO" build -trimpath -ldflags "$ldflags" -o "$TMP/fsbuild" ./builder/cmd/fsbuild
		fsbuild=("$TMP/fsbuild")
	fi
	mkdir -p "$out"
	rm -f "$out"/*.digests "$out/digests.txt"
	local line set args
	for line in "${BUILDS[@]}"; do
		read -r set args <<<"$line"
		local -a argv
		read -r -a argv <<<"$args"
		if [[ " $args " == *" --cuda "* && -n ${RELEASE_CUDA_BASE:-} ]]; then
			argv+=(--base "$RELEASE_CUDA_BASE")
		fi
		argv+=("$@" --print-digest "$out/$set.digests")
		log "fsbuild ${argv[*]}"
		local start=$SECONDS
		"${fsbuild[@]}" "${argv[@]}"
		[ -s "$out/$set.digests" ] || die "fsbuild wrote no digests to $out/$set.digests"
		log "$set images done in $((SECONDS - start)) s"
		cat "$out/$set.digests" >>"$out/digests.txt"
	done
	echo "release.sh: pushed:" >&2
	cat "$out/digests.txt"
}

cmd_binaries() {
	local out=$1 ldflags
	ldflags=$(makefile_ldflags)
	log "ldflags: $ldflags"
	mkdir -p "$out"
	rm -f "$out"/SHA256SUMS
	local p b os arch
	for p in "${BINARY_PLATFORMS[@]}"; do
		os=${p%/*} arch=${p#*/}
		for b in "${BINARIES[@]}"; do
			log "building ${b%%:*} for $p"
			CGO_ENABLED=0 GOOS=$os GOARCH=$arch "$GO" build -trimpath -ldflags "$ldflags" \
				-o "$out/${b%%:*}-$os-$arch" "${b#*:}"
		done
	done
	(
		cd "$out"
		files=()
		for p in "${BINARY_PLATFORMS[@]}"; do
			for b in "${BINARIES[@]}"; do files+=("${b%%:*}-${p%/*}-${p#*/}"); done
		done
		sha256sum "${files[@]}" >SHA256SUMS
	)
	cat "$out/SHA256SUMS"
}

# name_at_digest REF: NAME:TAG@DIGEST -> NAME@DIGEST (what to sign: the
# digest, never a tag that can move).
name_at_digest() {
	local ref=$1 img digest
	img=${ref%@*} digest=${ref##*@}
	[[ ${img##*/} == *:* ]] && img=${img%:*}
	echo "$img@$digest"
}

cmd_notes() {
	local out=$1
	[ -s "$out/digests.txt" ] || die "no $out/digests.txt: run the images step first"
	local server=${GITHUB_SERVER_URL:-https://github.com} repo=${GITHUB_REPOSITORY:-fedscale/fedscale-go}
	local version=${GITHUB_REF_NAME:-$(git describe --tags --always --abbrev=12 --match 'v[0-9]*' 2>/dev/null || echo dev)}
	{
		echo "## Container images"
		echo
		echo "Each is one index of linux/amd64 and linux/arm64, built by fsbuild with SLSA"
		echo "provenance and an SPDX SBOM per platform attached as OCI referrers, and signed"
		echo "with cosign (keyless: this repository's release workflow)."
		echo
		echo "| image | tag | digest |"
		echo "|---|---|---|"
		local ref img tag
		while read -r ref; do
			[ -n "$ref" ] || continue
			img=$(name_at_digest "$ref")
			img=${img%@*} tag=${ref%@*}
			echo "| \`$img\` | \`${tag#"$img":}\` | \`${ref##*@}\` |"
		done <"$out/digests.txt"
		echo
		echo "Pull by digest:"
		echo
		echo '```'
		while read -r ref; do
			if [ -n "$ref" ]; then name_at_digest "$ref"; fi
		done <"$out/digests.txt"
		echo '```'
		echo
		echo "Verify a signature:"
		echo
		echo '```sh'
		echo "cosign verify \\"
		echo "  --certificate-identity '$server/$repo/.github/workflows/release.yml@refs/tags/$version' \\"
		echo "  --certificate-oidc-issuer https://token.actions.githubusercontent.com \\"
		echo "  NAME@DIGEST"
		echo '```'
		echo
		echo "To rebuild and compare: check out \`$version\` and run"
		echo "\`fsbuild all --output oci=/tmp/verify --platform linux/amd64,linux/arm64\` (see the README)."
		echo
		echo "## Binaries"
		echo
		echo "\`fsbuild\` and \`launcher\` for linux and darwin, amd64 and arm64; check them with"
		echo "\`sha256sum -c SHA256SUMS --ignore-missing\`."
	} >"$out/notes.md"
	cat "$out/notes.md"
}

cmd_sign() {
	local out=$1 ref n=0
	[ -s "$out/digests.txt" ] || die "no $out/digests.txt: run the images step first"
	while read -r ref; do
		[ -n "$ref" ] || continue
		log "signing $(name_at_digest "$ref")"
		cosign sign --yes "$(name_at_digest "$ref")"
		n=$((n + 1))
	done <"$out/digests.txt"
	log "signed $n images"
}

usage() {
	echo "usage: $0 images OUT [FSBUILD FLAG...] | binaries OUT | notes OUT | sign OUT" >&2
	exit 2
}

[ $# -ge 2 ] || usage
sub=$1 out=$2
shift 2
case $sub in
images) cmd_images "$out" "$@" ;;
binaries | notes | sign)
	[ $# -eq 0 ] || usage
	"cmd_$sub" "$out"
	;;
*) usage ;;
esac
