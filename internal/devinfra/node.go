package devinfra

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

// The real node: the one node of the test cluster that runs pods for real.
// The kwok tests' pods must never land on it: it carries NodeLabel=true and
// the NodeLabel=true:NoSchedule taint, and the real-pod tests select it and
// tolerate the taint.
const (
	NodeName  = "fedscale-node"
	NodeLabel = "fedscale.dev/real-node"
	nodeValue = "true"
)

// The node's network. nodeLink is a port-less bridge holding the node
// address (these kernels lack the dummy driver, and kubelet refuses a
// loopback node IP): kubelet, the apiserver's kubelet client and CoreDNS
// use it, and nothing touches eth0. podBridge is the CNI bridge; pod
// traffic never leaves it except to the node itself.
const (
	nodeIP    = "10.245.0.1"
	nodeLink  = "fsnode0"
	podBridge = "fsnode-cni0"
	podSubnet = "10.245.1.0/24"
	podGW     = "10.245.1.1"
)

// NodeTaint is the taint that keeps other pods off the real node.
func NodeTaint() corev1.Taint {
	return corev1.Taint{Key: NodeLabel, Value: nodeValue, Effect: corev1.TaintEffectNoSchedule}
}

// NodeSelector selects the real node.
func NodeSelector() map[string]string { return map[string]string{NodeLabel: nodeValue} }

// Node is a real single-node Kubernetes worker joined to the Kube control
// plane: Debian's containerd (with runc and the CNI plugins), kubelet built
// from the same k8s.io/kubernetes module as the control plane, and CoreDNS
// as a host process serving the cluster's DNS on the node address. The
// pause image is built in Go and imported, so nothing is pulled. Root only.
type Node struct {
	Kube *Kube
	// State holds the config files, pid files and logs
	// (/tmp/fedscale-node). Its lock is the machine's: the node's address,
	// bridges, ports and folders are fixed, so one node runs per machine,
	// joined to the control plane of whoever started it last.
	State string
	// Data holds containerd's root, kubelet's root, pod logs and CNI IPAM
	// (/var/lib/fedscale-node); Run holds containerd's socket and state and
	// runc's (/run/fedscale-node): apart from any other containerd.
	Data, Run string
	Log       *slog.Logger
}

// NewNode is the machine's node, joined to k.
func NewNode(k *Kube, log *slog.Logger) *Node {
	return &Node{Kube: k, State: "/tmp/fedscale-node", Data: "/var/lib/fedscale-node", Run: "/run/fedscale-node", Log: log}
}

// Containerd is the address of the node's containerd (for ctr -a, and
// what start prints).
func (n *Node) Containerd() string { return filepath.Join(n.Run, "containerd.sock") }

func (n *Node) file(name string) string { return filepath.Join(n.State, name) }
func (n *Node) kubeletRoot() string     { return filepath.Join(n.Data, "kubelet") }

// nodePackages are the Debian packages the node needs: a command of each
// tells whether it is installed.
var nodePackages = []struct{ cmd, pkg string }{
	{"containerd", "containerd"},
	{"runc", "runc"},
	{"/usr/lib/cni/bridge", "containernetworking-plugins"},
}

func (n *Node) stack() *Stack {
	cfg := n.file("containerd.toml")
	return &Stack{
		State:   State{Dir: n.State},
		Timeout: n.Kube.StartTimeout + 60*time.Second,
		Tools:   n.Kube.Tools,
		Log:     n.Log,
		Daemons: []Daemon{{
			Name: "containerd", Tool: "containerd", Mark: "--config " + cfg,
			Args:  []string{"--config", cfg},
			Ready: func(ctx context.Context) error { _, err := n.ctr(ctx, "version"); return err },
			Await: true,
			Then: func(ctx context.Context) error {
				return importTarball(ctx, n.Containerd(), n.file("pause.tar"))
			},
		}, {
			Name: "coredns", Tool: "coredns", Mark: "-conf " + n.file("Corefile"),
			Args:  []string{"-conf", n.file("Corefile"), "-dns.port", "53"},
			Ready: clusterDNSReady,
		}, {
			Name: "kubelet", Tool: "kubelet", Mark: "--root-dir=" + n.kubeletRoot(),
			Args: []string{"--config=" + n.file("kubelet.yaml"), "--kubeconfig=" + n.Kube.Kubeconfig(),
				"--hostname-override=" + NodeName, "--node-ip=" + nodeIP,
				"--root-dir=" + n.kubeletRoot(), "--cert-dir=" + filepath.Join(n.kubeletRoot(), "pki"),
				"--node-labels=" + NodeLabel + "=" + nodeValue,
				"--register-with-taints=" + NodeLabel + "=" + nodeValue + ":NoSchedule",
				"--v=1"},
			Ready: n.nodeReady,
		}},
	}
}

// ctr runs Debian's ctr against the node's containerd, in the namespace
// the CRI plugin uses.
func (n *Node) ctr(ctx context.Context, args ...string) ([]byte, error) {
	return ctr(ctx, n.Containerd(), args...)
}

func ctr(ctx context.Context, address string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ctr", append([]string{"--address", address, "--namespace", "k8s.io"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// clusterDNSReady: CoreDNS on the node address answers for the apiserver's
// own Service, read from the cluster.
func clusterDNSReady(ctx context.Context) error {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, net.JoinHostPort(nodeIP, "53"))
	}}
	_, err := r.LookupHost(ctx, "kubernetes.default.svc.cluster.local")
	return err
}

// nodeReady: the node is registered, Ready, and the scheduler may use it
// (the not-ready taint the node lifecycle controller lifts is gone).
func (n *Node) nodeReady(ctx context.Context) error {
	cs, err := n.Kube.client()
	if err != nil {
		return err
	}
	node, err := cs.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for _, t := range node.Spec.Taints {
		if t.Key == corev1.TaintNodeNotReady {
			return fmt.Errorf("node %s still has the %s taint", NodeName, t.Key)
		}
	}
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			return nil
		}
	}
	return fmt.Errorf("node %s is not Ready", NodeName)
}

// Start makes the node run and be Ready (the control plane first), and
// returns its containerd's address.
func (n *Node) Start(ctx context.Context) (string, error) {
	if os.Geteuid() != 0 {
		return "", errors.New("the real node (containerd, kubelet) needs root")
	}
	if _, err := n.Kube.Start(ctx); err != nil {
		return "", err
	}
	started, err := n.stack().Up(ctx, n.prepare)
	if err != nil {
		return "", err
	}
	if started {
		n.Log.Info(fmt.Sprintf("node %s Ready at %s (pods in %s, DNS on %s:53)", NodeName, nodeIP, podSubnet, nodeIP))
	}
	return n.Containerd(), nil
}

// prepare installs what is missing, clears an earlier run's leftovers,
// writes the config files and the kubelet's certificate, builds the pause
// image and sets up the network.
func (n *Node) prepare(ctx context.Context) error {
	for _, p := range nodePackages {
		if err := ensureCommand(ctx, n.Log, p.cmd, p.pkg); err != nil {
			return err
		}
	}
	if err := n.sweep(); err != nil {
		return err
	}
	for _, d := range []string{n.State, n.Data, n.Run} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := n.Kube.pki().ensureLeaf(kubeletServing, time.Now()); err != nil {
		return err
	}
	files, err := n.configFiles()
	if err != nil {
		return err
	}
	for name, data := range files {
		if err := os.MkdirAll(filepath.Dir(n.file(name)), 0o755); err != nil {
			return err
		}
		if err := writeFileAtomic(n.file(name), data, 0o644); err != nil {
			return err
		}
	}
	if err := writePauseImage(ctx, n.Kube.Root, n.Kube.Tools.Go, n.file("pause.tar")); err != nil {
		return err
	}
	return n.netUp()
}

// iptablesRules keep pod traffic on the pod bridge: pods talk to each
// other (accepted first, whatever the FORWARD policy another engine set)
// and to the node, never to the outside world.
var iptablesRules = [][]string{
	{"FORWARD", "-i", podBridge, "-o", podBridge, "-j", "ACCEPT"},
	{"FORWARD", "-i", podBridge, "!", "-o", podBridge, "-j", "DROP"},
	{"FORWARD", "-o", podBridge, "!", "-i", podBridge, "-j", "DROP"},
}

const ipForward = "/proc/sys/net/ipv4/ip_forward"

func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// netUp adds the node address and the FORWARD rules, and remembers
// ip_forward (the CNI bridge turns it on) for netDown.
func (n *Node) netUp() error {
	ctx := context.Background()
	if _, err := os.Stat(n.file("ip_forward")); errors.Is(err, os.ErrNotExist) {
		b, err := os.ReadFile(ipForward)
		if err != nil {
			return err
		}
		if err := writeFileAtomic(n.file("ip_forward"), b, 0o644); err != nil {
			return err
		}
	}
	if run(ctx, "ip", "link", "show", nodeLink) != nil {
		if err := run(ctx, "ip", "link", "add", nodeLink, "type", "bridge"); err != nil {
			return err
		}
	}
	if err := run(ctx, "ip", "addr", "replace", nodeIP+"/32", "dev", nodeLink); err != nil {
		return err
	}
	if err := run(ctx, "ip", "link", "set", nodeLink, "up"); err != nil {
		return err
	}
	for i := len(iptablesRules) - 1; i >= 0; i-- {
		r := iptablesRules[i]
		if run(ctx, "iptables", append([]string{"-C"}, r...)...) == nil {
			continue
		}
		if err := run(ctx, "iptables", append([]string{"-I", r[0], "1"}, r[1:]...)...); err != nil {
			return err
		}
	}
	return nil
}

// netDown undoes netUp and the CNI bridge.
func (n *Node) netDown() error {
	ctx := context.Background()
	var errs []error
	for _, r := range iptablesRules {
		for run(ctx, "iptables", append([]string{"-C"}, r...)...) == nil {
			if err := run(ctx, "iptables", append([]string{"-D"}, r...)...); err != nil {
				errs = append(errs, err)
				break
			}
		}
	}
	for _, l := range []string{podBridge, nodeLink} {
		if run(ctx, "ip", "link", "show", l) == nil {
			errs = append(errs, run(ctx, "ip", "link", "del", l))
		}
	}
	if b, err := os.ReadFile(n.file("ip_forward")); err == nil {
		// Only back to off: an engine started since may rely on it being on.
		if strings.TrimSpace(string(b)) == "0" && !dockerBridgeUp() {
			errs = append(errs, os.WriteFile(ipForward, []byte("0\n"), 0o644))
		}
		errs = append(errs, os.Remove(n.file("ip_forward")))
	}
	return errors.Join(errs...)
}

// dockerBridgeUp: a Docker engine's bridge exists, and it needs forwarding.
func dockerBridgeUp() bool { _, err := net.InterfaceByName("docker0"); return err == nil }

// Stop drains the node (deletes its pods so kubelet tears their sandboxes
// and networks down), stops kubelet, CoreDNS and containerd, and removes
// what they leave: shims, mounts, the bridges, the iptables rules, the
// kubelet's and CNI's data.
func (n *Node) Stop(ctx context.Context) error {
	if _, err := os.Stat(n.State); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	unlock, err := State{Dir: n.State}.Lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	st := n.stack()
	if st.State.PID(st.Daemons[2]) != 0 {
		n.drain(ctx)
	}
	if err := st.State.stop(st.Daemons[2]); err != nil {
		return err
	}
	if st.State.PID(st.Daemons[0]) != 0 {
		n.killTasks(ctx)
	}
	if err := st.Stop(); err != nil {
		return err
	}
	return n.sweep()
}

// drainWait bounds the wait for kubelet to stop the pods of a drain.
const drainWait = 60 * time.Second

// drain deletes every pod bound to the node and waits (bounded) until
// containerd runs no task: kubelet has stopped each pod's sandbox, and with
// it ran CNI DEL (exited tasks stay listed until kubelet's garbage
// collection; killTasks removes them).
// Failures only leave more to sweep.
func (n *Node) drain(ctx context.Context) {
	cs, err := n.Kube.client()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, drainWait)
	defer cancel()
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", NodeName).String()})
	if err != nil {
		return
	}
	for _, p := range pods.Items {
		_ = cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
	}
	for ctx.Err() == nil {
		out, err := n.ctr(ctx, "tasks", "ls")
		if err != nil || !strings.Contains(string(out), " RUNNING") {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// killTasks kills and deletes whatever containerd still runs, so no shim
// outlives it.
func (n *Node) killTasks(ctx context.Context) {
	out, err := n.ctr(ctx, "tasks", "ls", "-q")
	if err != nil {
		return
	}
	ids := strings.Fields(string(out))
	for _, id := range ids {
		_, _ = n.ctr(ctx, "tasks", "kill", "-s", "KILL", id)
	}
	for _, id := range ids {
		for i := 0; i < 20; i++ {
			if _, err := n.ctr(ctx, "tasks", "delete", id); err == nil {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
}

// sweep removes what a stopped node may have left: shims of our
// containerd, mounts under Data and Run (sandbox netns, rootfs, volumes),
// the network, and the kubelet's, CNI's and pod logs' folders (the images
// in containerd's root stay).
func (n *Node) sweep() error {
	var errs []error
	for _, pid := range shims(n.Containerd()) {
		errs = append(errs, terminate(pid))
	}
	unmounted := unmountUnder(n.Data, n.Run)
	errs = append(errs, unmounted, n.netDown())
	if unmounted != nil {
		// Never walk into a file system still mounted below (a pod's
		// volume may be anyone's data): the folders stay for a later stop.
		return errors.Join(errs...)
	}
	for _, d := range []string{n.kubeletRoot(), filepath.Join(n.Data, "cni"), filepath.Join(n.Data, "pod-logs"), n.Run} {
		errs = append(errs, os.RemoveAll(d))
	}
	return errors.Join(errs...)
}

// shims are the containerd-shim processes serving address.
func shims(address string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid <= 1 {
			continue
		}
		argv, ok := cmdline(pid)
		if ok && strings.HasPrefix(filepath.Base(argv[0]), "containerd-shim") && slices.Contains(argv, address) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// mountsUnder lists the mount points at or below the folders.
func mountsUnder(dirs ...string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 5 {
			continue
		}
		// Octal escapes (\040 for a space) never occur in our paths.
		mp := fs[4]
		for _, d := range dirs {
			if mp == d || strings.HasPrefix(mp, d+"/") {
				points = append(points, mp)
			}
		}
	}
	return points, sc.Err()
}

// unmountUnder detaches every mount below the folders, deepest first.
func unmountUnder(dirs ...string) error {
	points, err := mountsUnder(dirs...)
	if err != nil {
		return err
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	var errs []error
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// Leftovers lists what a stopped node left on this machine: its daemons'
// and shims' processes, mounts below its folders, its bridges and its
// iptables rules; nil when Stop removed everything it should.
func (n *Node) Leftovers(ctx context.Context) []string {
	out := n.stack().running()
	for _, pid := range shims(n.Containerd()) {
		out = append(out, fmt.Sprintf("containerd-shim pid %d", pid))
	}
	out = append(out, mountLeftovers(n.Data, n.Run)...)
	for _, l := range []string{podBridge, nodeLink} {
		if _, err := net.InterfaceByName(l); err == nil {
			out = append(out, "network link "+l)
		}
	}
	for _, r := range iptablesRules {
		if run(ctx, "iptables", append([]string{"-C"}, r...)...) == nil {
			out = append(out, "iptables rule -A "+strings.Join(r, " "))
		}
	}
	return out
}

// mountLeftovers names the mounts below dirs, or says they could not be
// read.
func mountLeftovers(dirs ...string) []string {
	points, err := mountsUnder(dirs...)
	if err != nil {
		return []string{"mounts: " + err.Error()}
	}
	for i, p := range points {
		points[i] = "mount " + p
	}
	return points
}

// Status is a line per daemon and whether the node is Ready.
func (n *Node) Status(ctx context.Context) ([]string, bool) {
	lines, ok := n.stack().Status()
	if !ok {
		return lines, false
	}
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if err := n.nodeReady(pctx); err != nil {
		return append(lines, err.Error()), false
	}
	return append(lines, "node "+NodeName+" Ready; containerd at "+n.Containerd()), true
}
