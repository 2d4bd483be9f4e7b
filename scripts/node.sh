#!/usr/bin/env bash
# scripts/node.sh start|stop|status|addr|import OCI-LAYOUT... — the test
# cluster's real node (root): Debian's containerd, runc and CNI plugins,
# kubelet and CoreDNS built from their Go modules, joined to the control
# plane of scripts/kube.sh (started first if needed). Its pods run for real;
# it is labelled and tainted fedscale.dev/real-node=true so that only pods
# selecting it land there.
#
#   scripts/node.sh start                 # prints containerd's address
#   scripts/node.sh import out/oci        # fsbuild's images (--output oci=DIR) onto the node
#   scripts/node.sh stop                  # drains, stops, removes bridges, rules, mounts
#
# One per machine (fixed address 10.245.0.1, bridges fsnode0 and fsnode-cni0):
# state in /tmp/fedscale-node, /var/lib/fedscale-node and /run/fedscale-node.
# The logic is internal/devinfra/node.go.
exec "$(dirname "${BASH_SOURCE[0]}")/devinfra.sh" node "$@"
