#!/usr/bin/env bash
# scripts/tools.sh NAME... — build pinned developer/CI tool binaries once and
# cache them by version, so a machine pays the (minutes-long) cold build only
# once per pinned version.
#
#   scripts/tools.sh buildkitd buildctl      # prints the bin folder last
#   PATH="$(scripts/tools.sh buildkitd buildctl | tail -n1):$PATH"
#
# Tools are built from small helper modules under tools/ (never the product's
# go.mod): their dependency sets are huge and would otherwise leak into it.
# The cache folder is keyed by the pinned version parsed from the helper
# module's go.mod, so bumping the pin (go get -tool ...@vX) rebuilds.
#
# Known tools (cache folder <group>-<version of the key module>):
#   buildkitd, buildctl     group buildkit    tools/buildkit  (github.com/moby/buildkit)
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl
#                           group kubernetes  tools/k8s       (k8s.io/kubernetes)
#   etcd                    group etcd        tools/k8s       (go.etcd.io/etcd/server/v3)
#   kwok                    group kwok        tools/kwok      (sigs.k8s.io/kwok)
#   staticcheck             group staticcheck tools/staticcheck (honnef.co/go/tools)
#
# Env: FEDSCALE_TOOLS_CACHE (default $HOME/.cache/fedscale-tools), GO (go).
# All progress goes to stderr; stdout carries only the bin folder(s), one per
# group, in the order first named (e.g. `buildkitd buildctl`: one line;
# `kube-apiserver etcd kwok`: three lines).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${FEDSCALE_TOOLS_CACHE:-$HOME/.cache/fedscale-tools}

GO=${GO:-go}
if ! command -v "$GO" >/dev/null 2>&1; then
	# Non-login shells (CI, sudo) may not have the toolchain on PATH.
	GO=/usr/local/go/bin/go
fi

log() { echo "tools.sh: $*" >&2; }

# spec NAME -> "<group> <helper dir under tools/> <module whose version keys
# the cache> <package> [<name go build gives the binary, when not NAME>]"
# A group is one cache folder and one `go build`; several groups may share a
# helper module (etcd is pinned in tools/k8s, next to the Kubernetes release
# that requires that very version, but is keyed by its own version).
KNOWN="buildkitd buildctl kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok staticcheck"
spec() {
	case $1 in
	buildkitd | buildctl) echo "buildkit buildkit github.com/moby/buildkit github.com/moby/buildkit/cmd/$1" ;;
	kube-apiserver | kube-controller-manager | kube-scheduler | kubectl)
		echo "kubernetes k8s k8s.io/kubernetes k8s.io/kubernetes/cmd/$1"
		;;
	# go build names a binary after the last path element that is not a major
	# version suffix: go.etcd.io/etcd/server/v3 becomes "server".
	etcd) echo "etcd k8s go.etcd.io/etcd/server/v3 go.etcd.io/etcd/server/v3 server" ;;
	kwok) echo "kwok kwok sigs.k8s.io/kwok sigs.k8s.io/kwok/cmd/kwok" ;;
	staticcheck) echo "staticcheck staticcheck honnef.co/go/tools honnef.co/go/tools/cmd/staticcheck" ;;
	*) return 1 ;;
	esac
}

# ldflags for a group: stamp the version, since a binary built from the module
# cache (not a git checkout) would otherwise report v0.0.0+unknown; -s -w keeps
# the cache small (these are daemons we never debug with dlv).
ldflags_for() { # GROUP VERSION
	case $1 in
	buildkit) echo "-s -w -X github.com/moby/buildkit/version.Version=$2" ;;
	kubernetes)
		# What hack/lib/version.sh stamps (gitVersion/Major/Minor) into both
		# version packages; the defaults would report v0.0.0-master.
		local v=${2#v} f="" p
		local major=${v%%.*} minor=${v#*.}
		minor=${minor%%.*}
		for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
			f+=" -X $p.gitVersion=$2 -X $p.gitMajor=$major -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
		done
		echo "-s -w$f"
		;;
	# etcd, kwok and staticcheck carry their versions as constants: nothing to stamp.
	*) echo "-s -w" ;;
	esac
}

# module_version GOMOD MODPATH: the version required in GOMOD, from either a
# require block line or a one-line `require MODPATH vX`. Tool directives name
# packages without versions, so they never match.
module_version() {
	local re=${2//./\\.}
	sed -nE "s#^[[:space:]]*(require[[:space:]]+)?${re}[[:space:]]+(v[^[:space:]]+).*#\2#p" "$1" | head -n1
}

[ $# -gt 0 ] || {
	echo "usage: $0 NAME... (known: $KNOWN)" >&2
	exit 2
}

# Group the requested tools, so one `go build` builds all of a group's
# missing tools (shared packages compile once).
declare -A GROUP_TOOLS=() GROUP_MOD=() GROUP_DIR=()
ORDER=()
for name in "$@"; do
	s=$(spec "$name") || {
		echo "tools.sh: unknown tool '$name' (known: $KNOWN)" >&2
		exit 2
	}
	read -r group dir mod _pkg <<<"$s"
	if [ -z "${GROUP_TOOLS[$group]+x}" ]; then
		ORDER+=("$group")
		GROUP_TOOLS[$group]=""
		GROUP_MOD[$group]=$mod
		GROUP_DIR[$group]=$dir
	fi
	case " ${GROUP_TOOLS[$group]} " in *" $name "*) ;; *) GROUP_TOOLS[$group]+=" $name" ;; esac
done

TMP=""
trap '[ -z "$TMP" ] || rm -rf "$TMP"' EXIT

for group in "${ORDER[@]}"; do
	moddir=$ROOT/tools/${GROUP_DIR[$group]}
	version=$(module_version "$moddir/go.mod" "${GROUP_MOD[$group]}")
	[ -n "$version" ] || {
		echo "tools.sh: no '${GROUP_MOD[$group]}' requirement in $moddir/go.mod" >&2
		exit 1
	}
	keydir=$CACHE/$group-$version
	bin=$keydir/bin
	# shellcheck disable=SC2206 # names are plain words
	tools=(${GROUP_TOOLS[$group]})

	missing() { local t; for t in "${tools[@]}"; do [ -x "$bin/$t" ] || echo "$t"; done; }

	if [ -n "$(missing)" ]; then
		mkdir -p "$bin"
		# Serialise builds of the same key: a second concurrent caller waits
		# here, then finds the binaries and skips. Binaries only appear by an
		# atomic rename, so "exists" always means "completely built".
		exec {lockfd}>"$keydir/.lock"
		flock -w 1800 "$lockfd" || {
			echo "tools.sh: timed out waiting for the build lock $keydir/.lock" >&2
			exit 1
		}
		mapfile -t todo < <(missing)
		if [ ${#todo[@]} -gt 0 ]; then
			pkgs=()
			declare -A built=()
			for t in "${todo[@]}"; do
				read -r _ _ _ pkg out <<<"$(spec "$t")"
				pkgs+=("$pkg")
				built[$t]=${out:-$t}
			done
			TMP=$(mktemp -d "$keydir/.build.XXXXXX") # same filesystem: mv is a rename
			log "building ${todo[*]} ($group $version) into $bin ..."
			start=$SECONDS
			# CGO_ENABLED=0: upstream ships buildkitd static too (its Dockerfile
			# builds with CGO_ENABLED=0; v0.34.2 has no cgo code), so the binary
			# needs no libc/libseccomp; Kubernetes builds its control plane and
			# kubectl static too, and etcd and kwok release static binaries.
			# GOWORK=off and -mod=readonly: build exactly what
			# tools/<dir>/go.{mod,sum} pin, whatever the caller's environment
			# says. -trimpath: no local paths in the binaries.
			(cd "$moddir" && CGO_ENABLED=0 GOWORK=off GOFLAGS=-mod=readonly \
				"$GO" build -trimpath -ldflags "$(ldflags_for "$group" "$version")" -o "$TMP/" "${pkgs[@]}") >&2
			for t in "${todo[@]}"; do mv -f "$TMP/${built[$t]}" "$bin/$t"; done
			unset built
			rm -rf "$TMP"
			TMP=""
			log "built ${todo[*]} in $((SECONDS - start)) s"
		fi
		exec {lockfd}>&-
	fi
	echo "$bin"
done
