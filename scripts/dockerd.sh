#!/usr/bin/env bash
# scripts/dockerd.sh install|start|stop|status — the Docker engine the image
# and e2e tests use: Debian's docker.io as a plain background process (as
# root; install only when dockerd is missing, start only when no engine
# answers). Log and pid in ${FEDSCALE_DOCKERD_STATE:-/tmp/fedscale-dockerd}.
# The logic is internal/devinfra/docker.go.
exec "$(dirname "${BASH_SOURCE[0]}")/devinfra.sh" dockerd "$@"
