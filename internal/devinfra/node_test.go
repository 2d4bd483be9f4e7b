package devinfra

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

func testNode(t *testing.T) *Node {
	dir := t.TempDir()
	k := &Kube{State: filepath.Join(dir, "kube")}
	return &Node{Kube: k, State: filepath.Join(dir, "node"), Data: "/var/lib/fedscale-node", Run: "/run/fedscale-node"}
}

// Every template renders, and the settings these VMs need are there.
func TestNodeConfigFiles(t *testing.T) {
	n := testNode(t)
	files, err := n.configFiles()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ file, want string }{
		{"containerd.toml", `sandbox_image = "` + pauseRef + `"`},
		{"containerd.toml", "restrict_oom_score_adj = true"},
		{"containerd.toml", `address = "/run/fedscale-node/containerd.sock"`},
		{"kubelet.yaml", "oomScoreAdj: 0"},
		{"kubelet.yaml", "failCgroupV1: false"},
		{"kubelet.yaml", "clusterDNS: [" + nodeIP + "]"},
		{"kubelet.yaml", "clientCAFile: " + n.Kube.pki().Dir + "/ca.crt"},
		{"Corefile", "kubeconfig " + n.Kube.Kubeconfig() + " fedscale-kube"},
		{"Corefile", "bind " + nodeIP},
		{"cni/10-fedscale.conflist", `"bridge": "` + podBridge + `"`},
	} {
		if !strings.Contains(string(files[c.file]), c.want) {
			t.Errorf("%s lacks %q:\n%s", c.file, c.want, files[c.file])
		}
	}
	if len(files) != len(nodeTemplates) {
		t.Errorf("%d files, want %d", len(files), len(nodeTemplates))
	}
}

// The kubelet's leaves chain to the CA, are kept while valid, and are
// issued anew for a new CA.
func TestKubeletLeaves(t *testing.T) {
	p := PKI{Dir: t.TempDir()}
	now := time.Now()
	if err := p.Make(now); err != nil {
		t.Fatal(err)
	}
	for _, l := range []leaf{kubeletClient, kubeletServing} {
		if err := p.verifyLeaf(l, now); err == nil {
			t.Fatalf("%s verifies before it is issued", l.name)
		}
		if err := p.ensureLeaf(l, now); err != nil {
			t.Fatal(err)
		}
		if err := p.verifyLeaf(l, now); err != nil {
			t.Fatalf("%s: %v", l.name, err)
		}
		before, _ := os.ReadFile(p.path(l.name + ".crt"))
		if err := p.ensureLeaf(l, now); err != nil {
			t.Fatal(err)
		}
		if after, _ := os.ReadFile(p.path(l.name + ".crt")); string(after) != string(before) {
			t.Errorf("%s was reissued while valid", l.name)
		}
	}
	if err := p.Make(now); err != nil { // a new CA
		t.Fatal(err)
	}
	if err := p.verifyLeaf(kubeletServing, now); err == nil {
		t.Error("the kubelet's certificate of the old CA still verifies")
	}
	if kubeletServing.use != x509.ExtKeyUsageServerAuth || !slices.Contains(kubeletClient.orgs, "system:masters") {
		t.Error("kubelet leaves: wrong usage or group")
	}
}

// The table's tools that the stacks run: the node adds kubelet and
// CoreDNS; dockerd and containerd come from Debian.
func TestTableTools(t *testing.T) {
	n := testNode(t)
	got := TableTools(&Docker{}, n.Kube, n)
	want := []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "coredns", "kubelet"}
	if !slices.Equal(got, want) {
		t.Errorf("TableTools = %q, want %q", got, want)
	}
}

func TestContainerdName(t *testing.T) {
	for ref, want := range map[string]string{
		"fedscale/fedscale-aggr:v1":            "docker.io/fedscale/fedscale-aggr:v1",
		"busybox:1":                            "docker.io/library/busybox:1",
		"localhost/fedscale-node/pause:1.0":    "localhost/fedscale-node/pause:1.0",
		"127.0.0.1:5000/fedscale-exec:e2e-abc": "127.0.0.1:5000/fedscale-exec:e2e-abc",
	} {
		tag, err := name.NewTag(ref)
		if err != nil {
			t.Fatal(err)
		}
		if got := containerdName(tag); got != want {
			t.Errorf("containerdName(%s) = %s, want %s", ref, got, want)
		}
	}
}

// A running daemon started with other arguments (by an older tree) is not
// healthy: Up restarts it with this tree's.
func TestHealthyWantsTheSameArguments(t *testing.T) {
	st := testStack(t)
	d := testDaemon(t, st.State.Dir, "testd", "serve")
	st.Daemons = []Daemon{d}
	paths, err := st.Paths(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Start(context.Background(), paths); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Stop() })
	if err := st.Healthy(context.Background()); err != nil {
		t.Fatalf("Healthy after start: %v", err)
	}
	st.Daemons[0].Args = append(slices.Clone(d.Args), "--new-flag")
	if err := st.Healthy(context.Background()); err == nil || !strings.Contains(err.Error(), "other arguments") {
		t.Fatalf("Healthy with new arguments: %v", err)
	}
	if st.State.PID(st.Daemons[0]) == 0 {
		t.Error("the daemon is no longer recognised as ours: Up could not stop it")
	}
}

// mountsUnder reads this process's mount table: /proc is a mount point,
// and a folder nothing is mounted below has none.
func TestMountsUnder(t *testing.T) {
	got, err := mountsUnder("/proc")
	if err != nil || !slices.Contains(got, "/proc") {
		t.Errorf("mountsUnder(/proc) = %v, %v; want /proc among them", got, err)
	}
	if got, err := mountsUnder(t.TempDir()); err != nil || len(got) != 0 {
		t.Errorf("mountsUnder(an empty folder) = %v, %v; want none", got, err)
	}
}
