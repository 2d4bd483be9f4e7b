#!/usr/bin/env bash
# scripts/dockerd.sh install|start|stop|status — the Docker engine the image
# and e2e tests load images into and run containers on.
#
# Debian's docker.io (engine 20.10, API 1.41) started as a plain background
# process: these VMs have no systemd, and no image is ever pulled.
#   scripts/dockerd.sh install   # apt-get install docker.io when dockerd is missing (root)
#   scripts/dockerd.sh start     # start it unless a daemon already answers; waits until ready
# State: log and pid under ${FEDSCALE_DOCKERD_STATE:-/tmp/fedscale-dockerd}.
set -euo pipefail

STATE=${FEDSCALE_DOCKERD_STATE:-/tmp/fedscale-dockerd}
LOG=$STATE/dockerd.log
PIDFILE=$STATE/dockerd.pid
export PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin

die() {
	echo "dockerd.sh: $*" >&2
	exit 1
}

answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

case ${1:-} in
install)
	command -v dockerd >/dev/null && exit 0
	[ "$(id -u)" = 0 ] || die "dockerd is missing; install Debian's docker.io as root"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/dev/null ||
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/dev/null; } ||
		die "apt-get install docker.io failed"
	;;
start)
	if answers; then exit 0; fi
	command -v dockerd >/dev/null || die "dockerd is not installed: run scripts/dockerd.sh install (as root)"
	[ "$(id -u)" = 0 ] || die "starting dockerd needs root"
	mkdir -p "$STATE"
	# The package's own start may have left a stale pid file behind.
	rm -f /var/run/docker.pid
	nohup dockerd >"$LOG" 2>&1 &
	echo $! >"$PIDFILE"
	for _ in $(seq 1 60); do
		answers && exit 0
		kill -0 "$(cat "$PIDFILE")" 2>/dev/null || die "dockerd exited; see $LOG: $(tail -n 5 "$LOG")"
		sleep 0.5
	done
	die "dockerd did not answer within 30 s; see $LOG"
	;;
stop)
	[ -f "$PIDFILE" ] || exit 0
	pid=$(cat "$PIDFILE")
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
	rm -f "$PIDFILE"
	;;
status)
	if answers; then echo "dockerd running: $(docker version --format '{{.Server.Version}}')"; else
		echo "dockerd not running"
		exit 1
	fi
	;;
*) die "usage: $0 install|start|stop|status" ;;
esac
