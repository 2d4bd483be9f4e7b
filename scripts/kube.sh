#!/usr/bin/env bash
# scripts/kube.sh start|stop|status|kubeconfig — a real Kubernetes control
# plane for tests on loopback (etcd, kube-apiserver, controller-manager,
# scheduler) with kwok's fake GPU and CPU nodes; no root needed.
#
#   KUBECONFIG=$(scripts/kube.sh start)   # builds binaries if needed, waits until ready
#   scripts/kube.sh stop                   # stops the daemons, wipes etcd
#
# State in ${FEDSCALE_KUBE_STATE:-/tmp/fedscale-kube}; ports FEDSCALE_KUBE_API_PORT
# (16443), _ETCD_PORT (23791), _ETCD_PEER_PORT (23801), _KCM_PORT (16257),
# _SCHEDULER_PORT (16259). The logic is internal/devinfra/kube.go.
exec "$(dirname "${BASH_SOURCE[0]}")/devinfra.sh" kube "$@"
