package devinfra

import (
	"bytes"
	"fmt"
	"path/filepath"
	"text/template"
)

// pauseRef is the pod sandbox image: built by writePauseImage, imported at
// each start and pinned in containerd's config, so kubelet never pulls it.
const pauseRef = "localhost/fedscale-node/pause:1.0"

// nodeTemplates are the node's config files, by name under State. What
// each setting answers is in the comments; most are what these VMs need
// (found by trying, see the README's Kubernetes section).
var nodeTemplates = map[string]string{
	// Debian's containerd 1.6: private root, state and socket, so it cannot
	// clash with a Docker engine's containerd.
	"containerd.toml": `version = 2
root = "{{.Data}}/containerd"
state = "{{.Run}}/containerd"
imports = []

[grpc]
  address = "{{.Socket}}"
[ttrpc]
  address = "{{.Socket}}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{{.Pause}}"
  # Root lacks CAP_SYS_RESOURCE on these VMs: nothing may lower
  # oom_score_adj below 0, and runc fails on the -998 kubelet asks for
  # sandboxes ("can't get final child's PID from pipe: EOF").
  restrict_oom_score_adj = true
  # Sandbox network namespaces under our state folder: a stop unmounts
  # everything below it.
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        SystemdCgroup = false
        Root = "{{.Run}}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{{.State}}/cni"
    max_conf_num = 1
`,
	"kubelet.yaml": `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 hosts (these VMs): kubelet >= 1.35 refuses v1 unless told.
failCgroupV1: false
failSwapOn: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://{{.Socket}}
address: {{.NodeIP}}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10258
tlsCertFile: {{.PKI}}/kubelet.crt
tlsPrivateKeyFile: {{.PKI}}/kubelet.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: {{.PKI}}/ca.crt}
authorization: {mode: Webhook}
clusterDomain: cluster.local
clusterDNS: [{{.NodeIP}}]
resolvConf: ""
podLogsDir: {{.Data}}/pod-logs
staticPodPath: ""
serializeImagePulls: false
imageMinimumGCAge: 24h
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: "200Mi", nodefs.available: "2%", imagefs.available: "2%"}
maxPods: 50
# No CAP_SYS_RESOURCE: kubelet cannot lower its own score (default -999).
oomScoreAdj: 0
`,
	// CoreDNS on the node address with the kubernetes plugin; no forward:
	// pods here have no outside world to resolve. cache 5 keeps the
	// negative answers executors get before the aggregator has an address
	// short.
	"Corefile": `cluster.local:53 in-addr.arpa:53 {
    bind {{.NodeIP}}
    errors
    kubernetes cluster.local in-addr.arpa {
        kubeconfig {{.Kubeconfig}} fedscale-kube
        pods insecure
        fallthrough in-addr.arpa
    }
    cache 5
}
.:53 {
    bind {{.NodeIP}}
    errors
    whoami
}
`,
	"cni/10-fedscale.conflist": `{
  "cniVersion": "1.0.0",
  "name": "fedscale-node",
  "plugins": [{
    "type": "bridge",
    "bridge": "{{.Bridge}}",
    "isGateway": true,
    "ipMasq": false,
    "hairpinMode": true,
    "ipam": {
      "type": "host-local",
      "ranges": [[{"subnet": "{{.Subnet}}", "gateway": "{{.Gateway}}"}]],
      "routes": [{"dst": "0.0.0.0/0"}],
      "dataDir": "{{.Data}}/cni/ipam"
    }
  }]
}
`,
}

// configFiles renders nodeTemplates for this node.
func (n *Node) configFiles() (map[string][]byte, error) {
	v := map[string]string{
		"Data": n.Data, "Run": n.Run, "State": n.State, "Socket": n.Containerd(), "Pause": pauseRef,
		"NodeIP": nodeIP, "PKI": n.Kube.pki().Dir, "Kubeconfig": n.Kube.Kubeconfig(),
		"Bridge": podBridge, "Subnet": podSubnet, "Gateway": podGW,
	}
	out := map[string][]byte{}
	for name, text := range nodeTemplates {
		t, err := template.New(name).Option("missingkey=error").Parse(text)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		var b bytes.Buffer
		if err := t.Execute(&b, v); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(n.State, name), err)
		}
		out[name] = b.Bytes()
	}
	return out, nil
}
