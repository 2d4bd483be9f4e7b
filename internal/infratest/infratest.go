// Package infratest hands tests the real infrastructure they run against:
// the project's buildkitd (found through $BUILDKIT_HOST), an in-process OCI
// registry (go-containerregistry's pkg/registry, referrers API on), the
// Docker engine, and a Kubernetes control plane (etcd, kube-apiserver,
// controller-manager, scheduler and kwok's fake GPU nodes, found through
// $FEDSCALE_KUBECONFIG) with one real node (its containerd found through
// $FEDSCALE_NODE_CONTAINERD), and two more Docker engines in one swarm
// (found through $FEDSCALE_SWARM). `make test` / .ci/run start the daemons
// with scripts/buildkitd.sh, scripts/kube.sh, scripts/dockerd.sh and
// scripts/swarm.sh (package internal/devinfra). Outside CI a missing daemon skips the test; under
// CI=true it fails it, since CI must provide everything.
package infratest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/fedscale/fedscale-go/builder/buildkit"
)

// missing skips, or under CI fails, a test whose infrastructure is absent.
func missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is required under CI", what)
	}
	t.Skipf("%s not available (run `make test`, which starts it)", what)
}

// needs skips a test under -short, and returns $env naming the daemon
// what: when unset, the test skips, or under CI fails.
func needs(t testing.TB, what, env, howToStart string) string {
	t.Helper()
	if testing.Short() {
		t.Skipf("needs %s; skipped with -short", what)
	}
	v := os.Getenv(env)
	if v == "" {
		missing(t, fmt.Sprintf("%s ($%s, from %s)", what, env, howToStart))
	}
	return v
}

// BuildKit returns the address of a running buildkitd.
func BuildKit(t testing.TB) string {
	t.Helper()
	addr := needs(t, "buildkitd", "BUILDKIT_HOST", "scripts/buildkitd.sh start")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := buildkit.Connect(ctx, addr)
	if err != nil {
		t.Fatalf("BUILDKIT_HOST is set but: %v", err)
	}
	c.Close()
	return addr
}

// Registry starts an in-process registry and returns its host:port on
// 127.0.0.1 (reachable by buildkitd, which runs on this machine).
// wrap, when not nil, wraps the registry's handler (e.g. to demand auth).
// The referrers API is on unless opts turn it off (they apply last).
func Registry(t testing.TB, wrap func(http.Handler) http.Handler, opts ...registry.Option) string {
	t.Helper()
	opts = append([]registry.Option{registry.WithReferrersSupport(true), registry.Logger(nopLogger())}, opts...)
	var h http.Handler = registry.New(opts...)
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// Docker fails or skips unless a Docker engine answers.
func Docker(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the Docker engine; skipped with -short")
	}
	out, err := exec.Command("docker", "version", "--format", "{{.Server.Version}}").CombinedOutput()
	if err != nil {
		missing(t, "the Docker engine ("+strings.TrimSpace(string(out))+")")
	}
}

// Swarm returns the addresses of the test swarm's two Docker engines (A,
// the manager, then B), each in a network namespace of its own, joined by
// the attachable overlay network devinfra.SwarmNetwork
// (internal/devinfra's Swarm, scripts/swarm.sh, as root).
func Swarm(t testing.TB) [2]string {
	t.Helper()
	Docker(t)
	v := needs(t, "the two-engine Docker swarm", "FEDSCALE_SWARM", "scripts/swarm.sh start, as root")
	f := strings.Fields(v)
	if len(f) != 2 {
		t.Fatalf("FEDSCALE_SWARM=%q: want two engine addresses", v)
	}
	for _, addr := range f {
		sock, ok := strings.CutPrefix(addr, "unix://")
		if fi, err := os.Stat(sock); !ok || err != nil || fi.Mode()&os.ModeSocket == 0 {
			t.Fatalf("FEDSCALE_SWARM is set but %s is not a unix socket (%v)", addr, err)
		}
	}
	return [2]string{f[0], f[1]}
}

// Kube returns the kubeconfig path of the test control plane.
func Kube(t testing.TB) string {
	t.Helper()
	path := needs(t, "the Kubernetes control plane", "FEDSCALE_KUBECONFIG", "scripts/kube.sh start")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("FEDSCALE_KUBECONFIG is set but: %v", err)
	}
	return path
}

// Node returns the address of the real test node's containerd (a node of
// the Kube cluster that runs pods for real: internal/devinfra's Node,
// labelled and tainted devinfra.NodeLabel). It also needs the cluster.
func Node(t testing.TB) (containerd string) {
	t.Helper()
	Kube(t)
	addr := needs(t, "the real Kubernetes node", "FEDSCALE_NODE_CONTAINERD", "scripts/node.sh start, as root")
	if fi, err := os.Stat(addr); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("FEDSCALE_NODE_CONTAINERD is set but %s is not a socket (%v)", addr, err)
	}
	return addr
}

// FreePorts returns a port p on 127.0.0.1 such that p..p+n are all free now:
// a job's processes listen on ps_port and ps_port+1+rank, so tests that pick
// ps_port need its neighbours free too (other packages run in parallel).
func FreePorts(t testing.TB, n int) int {
	t.Helper()
	for i := 0; i < 200; i++ {
		// Below Linux's ephemeral range (32768-60999): ports there are
		// handed to ":0" listeners and to outgoing connections of tests
		// running in parallel, which would take a port between this check
		// and the job's own listen.
		p := 20000 + rand.IntN(12000)
		ok := true
		for d := 0; d <= n && ok; d++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+d))
			if err != nil {
				ok = false
				continue
			}
			l.Close()
		}
		if ok {
			return p
		}
	}
	t.Fatalf("no %d consecutive free ports on 127.0.0.1", n+1)
	return 0
}

// NVRTC is the folder holding NVRTC's shared libraries (libnvrtc.so.12 and
// its builtins), from $FEDSCALE_NVRTC: Debian's packages unpacked into the
// tool cache by scripts/tools.sh nvrtc. NVRTC compiles CUDA C without a GPU
// or a driver.
func NVRTC(t testing.TB) string {
	t.Helper()
	dir := needs(t, "NVRTC", "FEDSCALE_NVRTC", "scripts/tools.sh nvrtc")
	if _, err := os.Stat(filepath.Join(dir, "libnvrtc.so.12")); err != nil {
		t.Fatalf("FEDSCALE_NVRTC is set but: %v", err)
	}
	return dir
}
