package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/fedscale/fedscale-go/internal/devinfra"
	"github.com/fedscale/fedscale-go/internal/infratest"
	"github.com/fedscale/fedscale-go/internal/kubetest"
	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/backend/k8s"
	"github.com/fedscale/fedscale-go/launcher/job"
	"github.com/fedscale/fedscale-go/launcher/results"
)

// podUID is the user the images run as: a hostPath data_path must be
// owned by (or writable for) it, since fsGroup does not apply to hostPath.
const podUID = 65532

// realNodeNamespace holds the real-node jobs (never deleted; each test
// stops its own job).
const realNodeNamespace = "fedscale-e2e"

// confK8s is an original-style conf_k8s.yml: 1 aggregator and 2
// executors on the MNIST subset in the FEMNIST layout (fsdata's output)
// under data_path, which the pods mount at /FedScale/benchmark.
// nodeConf is what the real-node jobs vary in their job file.
type nodeConf struct {
	model      string
	rounds     int
	localSteps int
	checkpoint bool
}

// quickNodeJob is 3 rounds of logistic regression: a few seconds.
var quickNodeJob = nodeConf{model: "logistic", rounds: 3, localSteps: 20}

func confK8s(s *suite, name, dataPath string, c nodeConf) []byte {
	return fmt.Appendf(nil, `# Configuration file of FAR training experiment

# ========== Container configuration ==========
# whether to use container deployment
use_container: k8s

# containerized job
data_path: %[1]s

# ========== Cluster configuration ==========
# number of aggregators, currently only support 1
num_aggregators: 1
# number of executors
num_executors: 2
aggregator_image: %[2]s
executor_image: %[3]s

# the test cluster's real node (tainted, so the kwok tests' pods stay off)
k8s:
    node_selector: {%[7]s: "%[8]s"}
    tolerations: [{key: %[7]s, operator: Equal, value: "%[9]s", effect: NoSchedule}]

auth:
    ssh_user: ""
    ssh_private_key: ~/.ssh/id_rsa

# cmd to run before we can indeed run FAR (in order)
setup_commands:

# ========== Additional job configuration ==========
job_conf:
    - job_name: %[4]s
    - log_path: %[5]s
    - time_stamp: %[6]s
    - task: cv
    - num_participants: 10
    - data_set: mnist
    - grey_input: True
    - data_dir: %[5]s/mnist
    - data_map_file: %[5]s/mnist/client_data_mapping/train.csv
    - model: %[10]s
    - eval_interval: 1
    - rounds: %[11]d
    - filter_less: 20
    - local_steps: %[12]d
    - learning_rate: 0.1
    - batch_size: 20
    - test_bsz: 100
    - use_cuda: False
    - save_checkpoint: %[13]s
`, dataPath, s.aggImage, s.execImage, name, job.ContainerDataPath, timeStamp,
		devinfra.NodeLabel, devinfra.NodeSelector()[devinfra.NodeLabel], devinfra.NodeTaint().Value,
		c.model, c.rounds, c.localSteps, map[bool]string{true: "True", false: "False"}[c.checkpoint])
}

// TestLauncherKubernetesRealNode runs a whole job on the test cluster's
// real node, as a ServiceAccount with launcher/backend/k8s/rbac.yaml's Role
// alone: the backend's Submit (placed on the node: it is tainted so the
// kwok tests' pods stay off), every pod Succeeded, executors finding the
// aggregator through the headless Service by CoreDNS, mutual TLS from the
// job's Secret, FedScale's log and metrics under data_path on the node;
// then `launcher status`, `launcher logs` and `launcher stop`, which
// leaves nothing of the job.
func TestLauncherKubernetesRealNode(t *testing.T) {
	s := need(t)
	infratest.Node(t)
	kc := infratest.Kube(t)
	if s.node == "" {
		t.Fatal("the real node runs but setup imported no image into it")
	}
	ctx := ctxFor(t, 6*time.Minute)
	name := s.jobName("node")

	dataPath := nodeData(t, s, name)
	file := filepath.Join(t.TempDir(), "conf_k8s.yml")
	if err := os.WriteFile(file, confK8s(s, name, dataPath, quickNodeJob), 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := job.Load(file, job.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := spec.Preflight(false); err != nil {
		t.Fatal(err)
	}
	// The launcher runs as a ServiceAccount with rbac.yaml's Role alone,
	// as an operator would run it; the checks use the admin's kubeconfig.
	launcherKC := kubetest.As(t, kc, realNodeNamespace, k8s.RBAC, nil)
	b, err := k8s.New(k8s.Options{Kubeconfig: launcherKC, Namespace: realNodeNamespace})
	if err != nil {
		t.Fatal(err)
	}
	cs := clientset(t, kc)
	launcher := func(args ...string) (string, error) {
		out, errOut, err := s.launcherCmd(ctx, append([]string{"--backend", "k8s", "--kubeconfig", launcherKC, "-n", realNodeNamespace}, args...)...)
		if err != nil {
			return out, fmt.Errorf("launcher %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
		}
		return out, nil
	}
	stopped := false
	t.Cleanup(func() {
		if stopped {
			return
		}
		if t.Failed() {
			showPods(t, cs, name)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := b.Stop(ctx, name); err != nil && !strings.Contains(err.Error(), "no such job") {
			t.Errorf("cleanup: %v", err)
		}
	})

	t0 := time.Now()
	if err := b.Submit(ctx, spec); err != nil {
		t.Fatal(err)
	}
	st, err := b.Wait(ctx, name, backend.UntilDone)
	if err != nil {
		showPods(t, cs, name)
		t.Fatalf("wait: %v (status %+v)", err, st)
	}
	// Wait ends when the aggregator has exited; the executors follow.
	for st.Phase != backend.Succeeded || !allSucceeded(st) {
		if ctx.Err() != nil {
			t.Fatalf("the job's processes did not all succeed: %+v", st)
		}
		time.Sleep(500 * time.Millisecond)
		if st, err = b.Status(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("submit to every pod Succeeded on the real node: %.1f s", time.Since(t0).Seconds())

	pods, err := cs.CoreV1().Pods(realNodeNamespace).List(ctx, metav1.ListOptions{LabelSelector: job.LabelJob + "=" + name})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 3 {
		t.Errorf("%d pods, want 3", len(pods.Items))
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName != devinfra.NodeName || p.Status.Phase != corev1.PodSucceeded {
			t.Errorf("pod %s: node %q phase %s, want %s Succeeded", p.Name, p.Spec.NodeName, p.Status.Phase, devinfra.NodeName)
		}
	}

	out, err := launcher("status", "-o", "json", name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	if st.Phase != backend.Succeeded || len(st.Processes) != 3 {
		t.Errorf("status: phase %s with %d processes, want Succeeded with 3: %s", st.Phase, len(st.Processes), out)
	}
	for _, p := range st.Processes {
		if p.Phase != backend.Succeeded || p.ExitCode == nil || *p.ExitCode != 0 {
			t.Errorf("process %s: phase %s, want Succeeded with exit code 0", p.Name, p.Phase)
		}
	}

	// Logs through the apiserver from the node's kubelet, of completed pods.
	out, err = launcher("logs", name)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"aggregator", "executor-1", "executor-2"} {
		if !strings.Contains(out, "["+p+"] ") {
			t.Errorf("launcher logs has no line of %s:\n%s", p, tail(out, 30))
		}
	}
	if out, err = launcher("logs", "--component", "aggregator", name); err != nil {
		t.Fatal(err)
	}
	if !testLineRE.MatchString(out) {
		t.Errorf("launcher logs --component aggregator holds no FedScale test line:\n%s", tail(out, 30))
	}

	// FedScale's files on the node, written by the non-root pods.
	logDir := filepath.Join(dataPath, "logs", name, timeStamp)
	agg, err := os.ReadFile(filepath.Join(logDir, "aggregator", "log"))
	if err != nil || !testLineRE.Match(agg) {
		t.Errorf("no FedScale test line in %s/aggregator/log (%v)", logDir, err)
	}
	if fi, err := os.Stat(filepath.Join(logDir, "metrics.jsonl")); err != nil || fi.Size() == 0 {
		t.Errorf("no metrics in %s/metrics.jsonl (%v)", logDir, err)
	}

	// results of the ended job: the aggregator pod's log, every round.
	if recs, err := results.ReadFile(filepath.Join(logDir, "metrics.jsonl")); err != nil {
		t.Error(err)
	} else {
		l := nodeLauncher{s: s, kc: launcherKC, args: []string{"--backend", "k8s", "--kubeconfig", launcherKC, "-n", realNodeNamespace}}
		checkResultsFromLog(ctx, t, l, name, recs, 0)
	}

	if _, err := launcher("stop", name); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if left := labelledObjects(t, cs, name); len(left) > 0 {
		t.Errorf("after stop: %v", left)
	}
}

// nodeData is a data_path for job name on the node (this machine): the
// MNIST subset, owned by the pods' user.
func nodeData(t *testing.T, s *suite, name string) string {
	t.Helper()
	dataPath := filepath.Join(s.tmp, name)
	if err := os.CopyFS(filepath.Join(dataPath, "mnist"), os.DirFS(filepath.Join(s.data, "mnist"))); err != nil {
		t.Fatal(err)
	}
	if err := filepath.WalkDir(dataPath, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, podUID, podUID)
	}); err != nil {
		t.Fatal(err)
	}
	return dataPath
}

func allSucceeded(st backend.Status) bool {
	for _, p := range st.Processes {
		if p.Phase != backend.Succeeded {
			return false
		}
	}
	return len(st.Processes) > 0
}

func clientset(t *testing.T, kubeconfig string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// labelledObjects lists what of job name is left in the namespace.
func labelledObjects(t *testing.T, cs kubernetes.Interface, name string) []string {
	t.Helper()
	ctx := context.Background()
	o := metav1.ListOptions{LabelSelector: job.LabelJob + "=" + name}
	var left []string
	add := func(kind string, n int, err error) {
		if err != nil {
			t.Fatalf("listing %ss: %v", kind, err)
		}
		if n > 0 {
			left = append(left, fmt.Sprintf("%d %s", n, kind))
		}
	}
	jl, err := cs.BatchV1().Jobs(realNodeNamespace).List(ctx, o)
	add("Job", len(jl.Items), err)
	pl, err := cs.CoreV1().Pods(realNodeNamespace).List(ctx, o)
	add("Pod", len(pl.Items), err)
	sl, err := cs.CoreV1().Services(realNodeNamespace).List(ctx, o)
	add("Service", len(sl.Items), err)
	cl, err := cs.CoreV1().ConfigMaps(realNodeNamespace).List(ctx, o)
	add("ConfigMap", len(cl.Items), err)
	kl, err := cs.CoreV1().Secrets(realNodeNamespace).List(ctx, o)
	add("Secret", len(kl.Items), err)
	return left
}

// showPods logs the job's pods' phases and the last lines of each, for a
// failed test.
func showPods(t *testing.T, cs kubernetes.Interface, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pl, err := cs.CoreV1().Pods(realNodeNamespace).List(ctx, metav1.ListOptions{LabelSelector: job.LabelJob + "=" + name})
	if err != nil {
		t.Logf("listing pods: %v", err)
		return
	}
	for _, p := range pl.Items {
		t.Logf("pod %s on %q: %s %+v", p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.ContainerStatuses)
		raw, err := cs.CoreV1().Pods(realNodeNamespace).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: new(int64(30))}).DoRaw(ctx)
		t.Logf("--- %s (last 30 lines; %v):\n%s", p.Name, err, raw)
	}
}

// TestLauncherKubernetesImageMissing: executors whose image the real node
// cannot get (nothing can be pulled here) end `submit --wait` with the
// image and the kubelet's reason, instead of a wait without end; status
// shows the same.
func TestLauncherKubernetesImageMissing(t *testing.T) {
	s := need(t)
	infratest.Node(t)
	kc := infratest.Kube(t)
	ctx := ctxFor(t, 4*time.Minute)
	name := s.jobName("noimage")
	const missing = "fedscale/fedscale-exec:no-such-tag"
	conf := strings.Replace(string(confK8s(s, name, t.TempDir(), quickNodeJob)), "executor_image: "+s.execImage, "executor_image: "+missing, 1)
	if !strings.Contains(conf, missing) {
		t.Fatal("the job file names no executor_image to replace")
	}
	file := filepath.Join(t.TempDir(), "conf_k8s.yml")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	launcherKC := kubetest.As(t, kc, realNodeNamespace, k8s.RBAC, nil)
	args := []string{"--backend", "k8s", "--kubeconfig", launcherKC, "-n", realNodeNamespace}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_, _, _ = s.launcherCmd(ctx, append(args, "stop", name)...)
	})
	_, errOut, err := s.launcherCmd(ctx, append(args, "submit", "--wait", file)...)
	if err == nil || !strings.Contains(errOut, "the node cannot get image "+missing) {
		t.Fatalf("submit --wait: %v\n%s", err, errOut)
	}
	t.Logf("submit --wait: %s", strings.TrimSpace(errOut))
	out, _, err := s.launcherCmd(ctx, append(args, "status", name)...)
	if !strings.Contains(out, "cannot get image "+missing) {
		t.Errorf("status (%v):\n%s", err, out)
	}
}
