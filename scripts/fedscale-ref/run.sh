#!/usr/bin/env bash
# fedscale-ref (`make bench-fedscale`): wall time of the ORIGINAL FedScale
# (Python) next to ours on one example job, same job file, same data, same
# traces, same machine: internal/cmd/fedscaleref, whose doc says what it
# needs, does and measured.
#
#   scripts/fedscale-ref/run.sh            # prepare, then FedScale, then ours
#   scripts/fedscale-ref/run.sh fedscale   # prepare, FedScale only
#   scripts/fedscale-ref/run.sh ours       # prepare, ours only
#   ROUNDS=5 scripts/fedscale-ref/run.sh   # fewer rounds for both
#   OURS_REV=HEAD scripts/fedscale-ref/run.sh   # ours built from that commit
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
exec "${GO:-go}" run ./internal/cmd/fedscaleref "$@"
