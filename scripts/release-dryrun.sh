#!/usr/bin/env bash
# scripts/release-dryrun.sh [--plan] — `make release-dryrun`: the release
# workflow (.github/workflows/release.yml) run on this machine against a
# local registry instead of Docker Hub, end to end, then verified by pulling
# every image back.
#
#   1. starts a local OCI registry (internal/cmd/devregistry: referrers API
#      on, 127.0.0.1:<free port>, gone when the script ends);
#   2. ensures buildkitd (scripts/buildkitd.sh start; $BUILDKIT_HOST when set);
#   3. pushes a two-platform stand-in for nvidia/cuda:12.4.1-runtime
#      (internal/cmd/standinbase), since Docker Hub is out of reach;
#   4. scripts/release.sh images: the release's own fsbuild calls (both
#      images, linux/amd64+arm64, CPU and CUDA) with where-to only changed:
#      --repo 127.0.0.1:PORT/fedscale --insecure-registry 127.0.0.1:PORT, the
#      stand-in as the CUDA --base, and --allow-dirty when the work tree has
#      uncommitted changes (a fresh clone has none);
#   5. pulls all back and checks them (internal/cmd/verifyimages): each tag
#      names its digest, an OCI index of exactly linux/amd64 and linux/arm64,
#      provenance and SBOM referrers per platform, CUDA ones on the stand-in;
#   6. scripts/release.sh binaries and notes: the release's binaries,
#      SHA256SUMS and notes (RELEASE_DRYRUN_BINARIES=0 skips the binaries).
# Not run here: `fsbuild pin --check` (needs Docker Hub), the registry login,
# cosign's keyless signing (needs the workflow's OIDC token) and creating the
# GitHub release.
#
# --plan prints the fsbuild calls it would make and exits: no registry, no
# buildkitd (internal/release's test compares them with release.yml's).
#
# Output: ${RELEASE_DRYRUN_OUT:-build/release-dryrun}/{digests.txt,notes.md,dist/}.
# Env: GO, FSBUILD (see scripts/release.sh), BUILDKIT_HOST.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
GO=${GO:-go}
if ! command -v "$GO" >/dev/null 2>&1; then
	GO=/usr/local/go/bin/go # non-login shells may lack the toolchain on PATH
fi
export GO
OUT=${RELEASE_DRYRUN_OUT:-$ROOT/build/release-dryrun}

PLAN=0
case ${1:-} in
--plan) PLAN=1 ;;
"") ;;
*)
	echo "usage: $0 [--plan]" >&2
	exit 2
	;;
esac

T0=$SECONDS
step() { echo "==== release-dryrun [$((SECONDS - T0)) s]: $*" >&2; }
die() {
	echo "release-dryrun: $*" >&2
	exit 1
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/release-dryrun.XXXXXX")
REG_PID=""
cleanup() {
	if [ -n "$REG_PID" ]; then
		kill -TERM "$REG_PID" 2>/dev/null || true
		wait "$REG_PID" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

if [ "$PLAN" = 1 ]; then
	# Placeholders where the real run has a live registry and a pushed base,
	# and an fsbuild that does nothing but write a made-up digest (unless the
	# caller brings its own FSBUILD): release.sh logs each call it makes.
	ADDR=127.0.0.1:5000
	BASE=$ADDR/nvidia/cuda:12.4.1-runtime-ubuntu22.04-standin@sha256:$(printf '0%.0s' {1..64})
	if [ -z "${FSBUILD:-}" ]; then
		cat >"$WORK/fsbuild" <<'EOF'
#!/usr/bin/env bash
while [ $# -gt 0 ]; do
	if [ "$1" = --print-digest ]; then echo "plan/fedscale-aggr:plan@sha256:$(printf '0%.0s' {1..64})" >"$2"; fi
	shift
done
EOF
		chmod +x "$WORK/fsbuild"
		export FSBUILD=$WORK/fsbuild
	fi
	OUT=$WORK/out
else
	step "building the dry-run's helpers (internal/cmd/devregistry, standinbase, verifyimages)"
	"$GO" build -o "$WORK/bin/" ./internal/cmd/devregistry ./internal/cmd/standinbase ./internal/cmd/verifyimages

	step "starting a local registry"
	"$WORK/bin/devregistry" --addr-file "$WORK/registry.addr" --blobs "$WORK/blobs" &
	REG_PID=$!
	for _ in $(seq 300); do
		[ -s "$WORK/registry.addr" ] && break
		kill -0 "$REG_PID" 2>/dev/null || die "the registry exited during start-up"
		sleep 0.1
	done
	[ -s "$WORK/registry.addr" ] || die "the registry did not start in 30 s"
	ADDR=$(cat "$WORK/registry.addr")

	step "ensuring buildkitd"
	if [ -z "${BUILDKIT_HOST:-}" ]; then
		BUILDKIT_HOST=$("$ROOT/scripts/buildkitd.sh" start)
	fi
	export BUILDKIT_HOST
	echo "buildkitd: $BUILDKIT_HOST" >&2

	step "pushing the stand-in CUDA base to $ADDR"
	BASE=$("$WORK/bin/standinbase" --registry "$ADDR")
	echo "stand-in base: $BASE" >&2
fi

# Where the images go: the only fsbuild flags that differ from release.yml's.
FLAGS=(--repo "$ADDR/fedscale" --insecure-registry "$ADDR")
if [ -n "$(git status --porcelain --untracked-files=normal)" ]; then
	# fsbuild refuses to push a dirty tree (the tag would lie); a release
	# runs on a clean tag checkout, so this happens only here.
	echo "release-dryrun: the work tree has uncommitted changes: adding --allow-dirty (tags get -dirty)" >&2
	FLAGS+=(--allow-dirty)
fi

step "release.sh images: fsbuild, both images, linux/amd64+arm64, CPU and CUDA"
RELEASE_CUDA_BASE=$BASE "$ROOT/scripts/release.sh" images "$OUT" "${FLAGS[@]}" >/dev/null
if [ "$PLAN" = 1 ]; then
	exit 0
fi

step "pulling the images back from $ADDR and checking them"
"$WORK/bin/verifyimages" --insecure --cuda-base "$BASE" "$OUT/digests.txt"

if [ "${RELEASE_DRYRUN_BINARIES:-1}" != 0 ]; then
	step "release.sh binaries: fsbuild and launcher, linux/darwin amd64/arm64, SHA256SUMS"
	"$ROOT/scripts/release.sh" binaries "$OUT/dist" >/dev/null
	ls -l "$OUT/dist" >&2
fi
step "release.sh notes"
"$ROOT/scripts/release.sh" notes "$OUT" >/dev/null

step "done: release notes in $OUT/notes.md, binaries in $OUT/dist; pushed and verified:"
cat "$OUT/digests.txt"
