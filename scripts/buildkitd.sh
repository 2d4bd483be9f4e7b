#!/usr/bin/env bash
# scripts/buildkitd.sh start|stop|status|addr — a local standalone buildkitd
# (pinned in tools/buildkit) for image builds and their tests; as root.
#
#   ADDR=$(scripts/buildkitd.sh start)    # builds binaries if needed, waits until ready
#
# State in ${FEDSCALE_BUILDKIT_STATE:-/tmp/fedscale-buildkit}; plain-HTTP
# registries beyond loopback: FEDSCALE_BUILDKIT_INSECURE_REGISTRIES="host:port ...".
# The logic is internal/devinfra/buildkit.go.
exec "$(dirname "${BASH_SOURCE[0]}")/devinfra.sh" buildkitd "$@"
