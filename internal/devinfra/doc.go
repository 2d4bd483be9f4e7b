// Package devinfra builds and runs the daemons the integration tests use:
// pinned tool binaries built from the helper modules under tools/ into a
// version-keyed cache (Toolbox), and host processes kept in a state folder
// (State, Daemon, Stack): a standalone buildkitd (BuildKit), a Kubernetes
// control plane with kwok's fake nodes (Kube), the Docker engine (Docker)
// and two more engines in network namespaces of their own joined in one
// swarm (Swarm).
//
// A Daemon is one table entry: its binary, arguments, the argument that
// makes a running process recognisably ours, and how to tell it serves. A
// Stack starts its daemons in order in one state folder (pid files, logs,
// a lock serialising start and stop) and stops them in reverse, so adding
// a daemon to a stack (a kubelet, containerd, CoreDNS) is adding an entry.
//
// The command internal/cmd/devinfra exposes the verbs; scripts/tools.sh,
// scripts/buildkitd.sh, scripts/kube.sh, scripts/dockerd.sh and
// scripts/swarm.sh only exec it.
// State folders, environment variables, ports and printed outputs are those
// the scripts had, so daemons started by the earlier scripts are recognised
// and reused.
package devinfra
