#!/usr/bin/env bash
# scripts/tools.sh NAME... — build pinned developer/CI tool binaries once per
# version and print their bin folders, one per group in the order first
# named (progress on stderr):
#
#   PATH="$(scripts/tools.sh buildkitd buildctl | tail -n1):$PATH"
#
# Built from the helper modules under tools/ into
# ${FEDSCALE_TOOLS_CACHE:-~/.cache/fedscale-tools}/<group>-<pinned version>;
# the table of tools is internal/devinfra/tools.go.
exec "$(dirname "${BASH_SOURCE[0]}")/devinfra.sh" tools "$@"
