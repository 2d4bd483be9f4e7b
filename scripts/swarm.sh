#!/usr/bin/env bash
# scripts/swarm.sh start|stop|status|addr — two more Docker engines on this
# machine, each in its own network namespace, joined in one swarm with the
# attachable overlay network fedscale-swarm-net (as root): the hosts of the
# multi-host Docker test. addr prints both engines' addresses (A, the
# manager, then B). State in ${FEDSCALE_SWARM_STATE:-/tmp/fedscale-swarm};
# stop removes everything. The logic is internal/devinfra/swarm.go.
exec "$(dirname "${BASH_SOURCE[0]}")/devinfra.sh" swarm "$@"
