package k8s

// Integration tests against a real control plane (scripts/kube.sh: etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler and kwok's fake
// nodes), found through $FEDSCALE_KUBECONFIG. kwok keeps pods Running and
// never completes them, and serves no logs.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/fedscale/fedscale-go/internal/infratest"
	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/job"
	"github.com/fedscale/fedscale-go/launcher/results"
	"github.com/fedscale/fedscale-go/runtime/mtls"
)

// testNamespace holds every integration test's jobs (it is never deleted
// by Stop; each test removes its own job).
const testNamespace = "fedscale-test"

// kube returns a backend on the test cluster and a plain clientset to check
// what it did.
func kube(t testing.TB, ns string) (*Backend, kubernetes.Interface) {
	t.Helper()
	kc := infratest.Kube(t)
	b, err := New(Options{Kubeconfig: kc, Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 100, 200
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b, cs
}

// submit submits s and stops it at the end of the test.
func submit(t testing.TB, b *Backend, s *job.Spec) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.Submit(ctx, s); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := b.Stop(ctx, s.Name); err != nil && !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("cleanup: %v", err)
		}
	})
}

// labelled counts what carries the job's label, by kind.
func labelled(t testing.TB, cs kubernetes.Interface, ns, name string) map[string][]string {
	t.Helper()
	ctx := context.Background()
	o := metav1.ListOptions{LabelSelector: selector(name)}
	out := map[string][]string{}
	jl, err := cs.BatchV1().Jobs(ns).List(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range jl.Items {
		out["Job"] = append(out["Job"], x.Name)
	}
	cl, err := cs.CoreV1().ConfigMaps(ns).List(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range cl.Items {
		out["ConfigMap"] = append(out["ConfigMap"], x.Name)
	}
	kl, err := cs.CoreV1().Secrets(ns).List(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range kl.Items {
		out["Secret"] = append(out["Secret"], x.Name)
	}
	sl, err := cs.CoreV1().Services(ns).List(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range sl.Items {
		out["Service"] = append(out["Service"], x.Name)
	}
	pl, err := cs.CoreV1().Pods(ns).List(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range pl.Items {
		out["Pod"] = append(out["Pod"], x.Name)
	}
	return out
}

// The whole life of a job: submit makes exactly the expected objects, the
// server accepts them, the job controller and the scheduler put the
// executors on GPU nodes, Wait sees them Running, Status reports them,
// Stop leaves nothing, a second Stop is ErrNotFound.
func TestKubeLifecycle(t *testing.T) {
	b, cs := kube(t, testNamespace)
	const name = "it-life"
	s := testSpec(t, jobParams{name: name, executors: 3, cuda: true, dataPath: "/var/lib/fedscale"})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	start := time.Now()
	submit(t, b, s)
	t.Logf("submit: %v", time.Since(start))
	before := b.Requests()
	st, err := b.Wait(ctx, name, backend.UntilRunning)
	if err != nil {
		t.Fatalf("wait: %v (%+v)", err, st)
	}
	t.Logf("running %v after submit, %d API requests while waiting", time.Since(start), b.Requests()-before)
	if st.Phase != backend.Running || len(st.Processes) != 4 {
		t.Errorf("wait: %+v", st)
	}

	got := labelled(t, cs, testNamespace, name)
	if strings.Join(got["Job"], ",") != "it-life-aggregator,it-life-executor-1,it-life-executor-2,it-life-executor-3" ||
		strings.Join(got["ConfigMap"], ",") != "it-life-config" || strings.Join(got["Service"], ",") != "it-life-aggregator" ||
		strings.Join(got["Secret"], ",") != "it-life-tls-aggregator,it-life-tls-executor-1,it-life-tls-executor-2,it-life-tls-executor-3" {
		t.Errorf("objects %v", got)
	}
	agg, err := cs.BatchV1().Jobs(testNamespace).Get(ctx, "it-life-aggregator", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm, _ := cs.CoreV1().ConfigMaps(testNamespace).Get(ctx, "it-life-config", metav1.GetOptions{})
	svc, _ := cs.CoreV1().Services(testNamespace).Get(ctx, "it-life-aggregator", metav1.GetOptions{})
	owned := []metav1.Object{cm, svc}
	// Each process has a Secret of its own holding the CA certificate and
	// its own certificate and key, and its pod mounts that Secret alone: no
	// pod can read another process's key. A certificate works for its rank
	// only (runtime/mtls's tests, and TestMutualTLSJob).
	for rank := 0; rank <= 3; rank++ {
		proc := mtls.ProcessName(rank)
		sec, err := cs.CoreV1().Secrets(testNamespace).Get(ctx, "it-life-tls-"+proc, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"ca.crt", proc + ".crt", proc + ".key"}
		slices.Sort(want)
		if keys := slices.Sorted(maps.Keys(sec.Data)); !slices.Equal(keys, want) || !*sec.Immutable {
			t.Errorf("%s: keys %v", sec.Name, keys)
		}
		j := agg
		if rank > 0 {
			if j, err = cs.BatchV1().Jobs(testNamespace).Get(ctx, fmt.Sprintf("it-life-executor-%d", rank), metav1.GetOptions{}); err != nil {
				t.Fatal(err)
			}
			owned = append(owned, j)
		}
		owned = append(owned, sec)
		var mounted []string
		for _, v := range j.Spec.Template.Spec.Volumes {
			if v.Secret != nil {
				mounted = append(mounted, v.Secret.SecretName)
				for _, it := range v.Secret.Items {
					mounted = append(mounted, it.Key)
				}
			}
		}
		if want := []string{sec.Name, "ca.crt", proc + ".crt", proc + ".key"}; !slices.Equal(mounted, want) {
			t.Errorf("%s's pod mounts %v, want %v", proc, mounted, want)
		}
	}
	for _, o := range owned {
		refs := o.GetOwnerReferences()
		if len(refs) != 1 || refs[0].UID != agg.UID || *refs[0].Controller || !*refs[0].BlockOwnerDeletion {
			t.Errorf("%s: owner references %+v", o.GetName(), refs)
		}
	}
	if cm.Data[job.ContainerConfigFile] != string(s.Config) {
		t.Errorf("configmap %v", cm.Data)
	}
	if svc.Spec.ClusterIP != corev1.ClusterIPNone || !svc.Spec.PublishNotReadyAddresses {
		t.Errorf("service %+v", svc.Spec)
	}

	// launcher results: the job document through the service proxy; the
	// kwok pod serves none, so the error says where it looked.
	if _, err := results.Load(ctx, b, name); err == nil || !strings.Contains(err.Error(), "no metrics can be read from here: the aggregator's job document through the API server's service proxy") {
		t.Errorf("results of a job whose aggregator serves nothing: %v", err)
	}
	if _, err := results.Load(ctx, b, "it-nosuch"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("results of an unknown job: %v, want ErrNotFound", err)
	}

	// Waiting again returns at once: everything runs.
	if st, err := b.Wait(ctx, name, backend.UntilRunning); err != nil || st.Phase != backend.Running {
		t.Errorf("second wait: %s %v", st.Phase, err)
	}

	// The pods as the cluster made them.
	pl, err := cs.CoreV1().Pods(testNamespace).List(ctx, metav1.ListOptions{LabelSelector: selector(name)})
	if err != nil {
		t.Fatal(err)
	}
	if len(pl.Items) != 4 {
		t.Fatalf("%d pods", len(pl.Items))
	}
	seen := map[string]bool{}
	for _, p := range pl.Items {
		c := p.Spec.Containers[0]
		comp := p.Labels[job.LabelComponent]
		if p.Labels[job.LabelJob] != name || p.Labels[job.LabelManagedBy] != job.ManagedBy {
			t.Errorf("%s: labels %v", p.Name, p.Labels)
		}
		gpus := c.Resources.Limits[GPUResource]
		switch comp {
		case "aggregator":
			seen["aggregator"] = true
			if p.Labels[job.LabelRank] != "0" || !gpus.IsZero() || strings.HasPrefix(p.Spec.NodeName, "kwok-gpu-") {
				t.Errorf("aggregator pod %s: rank %q gpus %v node %s", p.Name, p.Labels[job.LabelRank], gpus, p.Spec.NodeName)
			}
		case "executor":
			r, ok := rankOf(p.Labels)
			if !ok {
				t.Errorf("%s: no rank label", p.Name)
			}
			seen["executor-"+strconv.Itoa(r)] = true
			if gpus.Value() != 1 || !strings.HasPrefix(p.Spec.NodeName, "kwok-gpu-") {
				t.Errorf("executor pod %s: gpus %v on node %s", p.Name, gpus, p.Spec.NodeName)
			}
			if !slices.Contains(c.Args, "--rank") || c.Args[slices.Index(c.Args, "--rank")+1] != strconv.Itoa(r) {
				t.Errorf("%s: rank %d, args %q", p.Name, r, c.Args)
			}
		}
		var host *corev1.HostPathVolumeSource
		for _, v := range p.Spec.Volumes {
			if v.HostPath != nil {
				host = v.HostPath
			}
		}
		if host == nil || host.Path != "/var/lib/fedscale" || *host.Type != corev1.HostPathDirectory {
			t.Errorf("%s: hostPath %+v", p.Name, host)
		}
		mounted := map[string]bool{}
		for _, m := range c.VolumeMounts {
			mounted[m.MountPath] = true
		}
		if !mounted[job.ContainerDataPath] || !mounted[job.ContainerConfigDir] {
			t.Errorf("%s: mounts %v", p.Name, c.VolumeMounts)
		}
		if p.Status.Phase != corev1.PodRunning {
			t.Errorf("%s: %s", p.Name, p.Status.Phase)
		}
	}
	if len(seen) != 4 {
		t.Errorf("processes %v", seen)
	}

	st, err = b.Status(ctx, name)
	if err != nil || st.Phase != backend.Running || st.Created.IsZero() {
		t.Fatalf("status: %+v %v", st, err)
	}
	for _, p := range st.Processes {
		if p.Phase != backend.Running || !p.Ready || p.Restarts != 0 {
			t.Errorf("status of %s: %+v", p.Name, p)
		}
	}
	// kwok runs no containers and serves no logs: the error must still be clear.
	var logs bytes.Buffer
	err = b.Logs(ctx, name, backend.LogOptions{Process: "executor-2"}, &logs)
	t.Logf("logs on kwok: %q %v", logs.String(), err)
	if err := b.Logs(ctx, name, backend.LogOptions{Process: "executor-7"}, &logs); err == nil || !strings.Contains(err.Error(), "aggregator and executor-1..3") {
		t.Errorf("logs of executor-7: %v", err)
	}

	ls, err := b.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	listed := false
	for _, l := range ls {
		listed = listed || l.Job == name && l.Phase == backend.Running
	}
	if !listed {
		t.Errorf("list: %+v", ls)
	}

	start = time.Now()
	if err := b.Stop(ctx, name); err != nil {
		t.Fatal(err)
	}
	t.Logf("stop: %v", time.Since(start))
	if left := labelled(t, cs, testNamespace, name); len(left) != 0 {
		t.Errorf("left after stop: %v", left)
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, testNamespace, metav1.GetOptions{}); err != nil {
		t.Errorf("the namespace should stay: %v", err)
	}
	err = b.Stop(ctx, name)
	if !errors.Is(err, backend.ErrNotFound) || !strings.Contains(err.Error(), `job "it-life"`) ||
		!strings.Contains(err.Error(), "namespace "+testNamespace+" on https://") {
		t.Errorf("second stop: %v", err)
	}
	t.Logf("second stop: %v", err)
	if _, err := b.Status(ctx, name); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("status after stop: %v", err)
	}
}

func TestKubeExists(t *testing.T) {
	b, cs := kube(t, testNamespace)
	s := testSpec(t, jobParams{name: "it-exists", executors: 1})
	submit(t, b, s)
	ctx := context.Background()
	err := b.Submit(ctx, s)
	if !errors.Is(err, backend.ErrExists) || !strings.Contains(err.Error(), "it-exists-aggregator") {
		t.Fatalf("second submit: %v", err)
	}
	t.Logf("second submit: %v", err)
	// Nothing was added or removed.
	got := labelled(t, cs, testNamespace, "it-exists")
	if len(got["Job"]) != 2 || len(got["ConfigMap"]) != 1 || len(got["Service"]) != 1 || len(got["Secret"]) != 2 {
		t.Errorf("objects after a refused submit: %v", got)
	}
}

// Deleting the aggregator Job alone removes the rest through the garbage
// collector (the owner references work on a real server).
func TestKubeOwnerCascade(t *testing.T) {
	b, cs := kube(t, testNamespace)
	s := testSpec(t, jobParams{name: "it-cascade", executors: 2})
	submit(t, b, s)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := cs.BatchV1().Jobs(testNamespace).Delete(ctx, "it-cascade-aggregator", metav1.DeleteOptions{
		PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}); err != nil {
		t.Fatal(err)
	}
	// Follow the label by watch (the backend's own follower) until the
	// garbage collector has removed everything.
	f, err := b.follow(ctx, selector("it-cascade"), followJobs|followPods|followConfigMaps|followServices|followSecrets)
	if err != nil {
		t.Fatal(err)
	}
	defer f.stop()
	for len(f.jobs())+len(f.pods())+len(f.configMaps())+len(f.services())+len(f.secrets()) > 0 {
		if err := f.next(ctx); err != nil {
			t.Fatalf("the garbage collector left %v: %v", labelled(t, cs, testNamespace, "it-cascade"), err)
		}
	}
	if left := labelled(t, cs, testNamespace, "it-cascade"); len(left) != 0 {
		t.Errorf("left: %v", left)
	}
}

// Everything Plan prints for the original's conf_k8s.yml passes the
// server's validation and admission (a dry-run create).
func TestKubePlanDryRun(t *testing.T) {
	ns := fmt.Sprintf("fedscale-plan-%d", time.Now().UnixNano()%1e6)
	_, cs := kube(t, ns)
	b, err := New(Options{Kubeconfig: infratest.Kube(t), Namespace: ns, PlanNamespace: true})
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	t.Setenv("FEDSCALE_HOME", home)
	s, err := job.Load(filepath.Join("..", "..", "job", "testdata", "conf_k8s.yml"), job.Options{
		NodeSelector: map[string]string{"pool": "fl"}, Tolerations: []string{"pool=fl:NoSchedule"},
		ImagePullSecrets: []string{"regcred"}, PriorityClass: "system-node-critical", ServiceAccount: "default",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !s.UseCUDA || s.DataPath != filepath.Join(home, "benchmark") {
		t.Fatalf("spec %+v", s)
	}
	var out bytes.Buffer
	if err := b.Plan(&out, s); err != nil {
		t.Fatal(err)
	}
	objs := decodePlan(t, out.String())
	ctx := context.Background()
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"}
	create := func(o runtime.Object) error {
		switch o := o.(type) {
		case *corev1.Namespace:
			_, err = cs.CoreV1().Namespaces().Create(ctx, o, dry)
		case *corev1.ConfigMap:
			_, err = cs.CoreV1().ConfigMaps(o.Namespace).Create(ctx, o, dry)
		case *corev1.Service:
			_, err = cs.CoreV1().Services(o.Namespace).Create(ctx, o, dry)
		case *corev1.Secret:
			_, err = cs.CoreV1().Secrets(o.Namespace).Create(ctx, o, dry)
		case *batchv1.Job:
			_, err = cs.BatchV1().Jobs(o.Namespace).Create(ctx, o, dry)
		default:
			err = fmt.Errorf("unexpected %T", o)
		}
		return err
	}
	// The Namespace first, as it is: it does not exist yet.
	if err := create(objs[0]); err != nil {
		t.Fatalf("dry-run Namespace: %v", err)
	}
	// Namespaced objects need their namespace to exist, even in a dry run.
	if _, err := cs.CoreV1().Namespaces().Create(ctx, objs[0].(*corev1.Namespace), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	for _, o := range objs[1:] {
		if err := create(o); err != nil {
			t.Errorf("dry-run %T: %v", o, err)
		}
	}
	// Nothing was made.
	if got := labelled(t, cs, ns, "femnist"); len(got) != 0 {
		t.Errorf("a dry run made %v", got)
	}
}

// freeGPUs is the cluster's allocatable nvidia.com/gpu less what
// scheduled, unfinished pods hold.
func freeGPUs(t testing.TB, cs kubernetes.Interface) int64 {
	t.Helper()
	ctx := context.Background()
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	free := int64(0)
	for _, nd := range nodes.Items {
		q := nd.Status.Allocatable[GPUResource]
		free += q.Value()
	}
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "status.phase!=Succeeded,status.phase!=Failed"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName == "" {
			continue
		}
		for _, c := range p.Spec.Containers {
			q := c.Resources.Limits[GPUResource]
			free -= q.Value()
		}
	}
	return free
}

// ensureGPUs makes sure the kwok cluster has n free nvidia.com/gpu, adding
// fake GPU nodes (8 GPUs each, tainted like the others) for the test's
// duration when kube.sh's four (32 GPUs) are not enough.
func ensureGPUs(t testing.TB, cs kubernetes.Interface, n int) {
	t.Helper()
	ctx := context.Background()
	free := freeGPUs(t, cs)
	missing := int64(n) - free
	if missing <= 0 {
		return
	}
	add := int((missing + 7) / 8)
	t.Logf("the cluster has %d free GPUs; adding %d fake GPU nodes for %d", free, add, n)
	var names []string
	for i := 0; i < add; i++ {
		name := fmt.Sprintf("fedscale-test-gpu-%d", i)
		res := corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("64"), corev1.ResourceMemory: resource.MustParse("256Gi"),
			corev1.ResourcePods: resource.MustParse("250"), GPUResource: resource.MustParse("8"),
		}
		nd := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name,
				Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
				Labels:      map[string]string{"type": "kwok-fedscale-test", "kubernetes.io/hostname": name, "nvidia.com/gpu.present": "true"}},
			Spec: corev1.NodeSpec{
				PodCIDR: fmt.Sprintf("10.244.%d.0/24", 100+i), PodCIDRs: []string{fmt.Sprintf("10.244.%d.0/24", 100+i)},
				Taints: []corev1.Taint{{Key: "nvidia.com/gpu", Value: "present", Effect: corev1.TaintEffectNoSchedule}},
			},
			Status: corev1.NodeStatus{Capacity: res, Allocatable: res},
		}
		if _, err := cs.CoreV1().Nodes().Create(ctx, nd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	t.Cleanup(func() {
		for _, name := range names {
			_ = cs.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{})
		}
	})
	// Ready, and without the not-ready taint admission gives new nodes:
	// followed by watch.
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	sel := metav1.ListOptions{LabelSelector: "type=kwok-fedscale-test"}
	nl, err := cs.CoreV1().Nodes().List(wctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	ready := map[string]bool{}
	isReady := func(nd *corev1.Node) bool {
		ok := false
		for _, c := range nd.Status.Conditions {
			ok = ok || c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue
		}
		for _, tn := range nd.Spec.Taints {
			if tn.Key == "node.kubernetes.io/not-ready" {
				ok = false
			}
		}
		return ok
	}
	for i := range nl.Items {
		ready[nl.Items[i].Name] = isReady(&nl.Items[i])
	}
	allReady := func() bool {
		for _, name := range names {
			if !ready[name] {
				return false
			}
		}
		return true
	}
	sel.ResourceVersion = nl.ResourceVersion
	w, err := cs.CoreV1().Nodes().Watch(wctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for !allReady() {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("node watch ended; ready: %v", ready)
			}
			if nd, ok := ev.Object.(*corev1.Node); ok {
				ready[nd.Name] = ev.Type != watch.Deleted && isReady(nd)
			}
		case <-wctx.Done():
			t.Fatalf("nodes not ready: %v", ready)
		}
	}
}

// 100 executors with use_cuda reach Running on kwok's GPU nodes, followed
// by watch: the API requests Wait makes do not grow with the pods.
func TestKube100GPUExecutors(t *testing.T) {
	if testing.Short() {
		t.Skip("100 pods; skipped with -short")
	}
	b, cs := kube(t, testNamespace)
	ensureGPUs(t, cs, 100)
	const name = "it-100"
	s := testSpec(t, jobParams{name: name, executors: 100, cuda: true})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	submit(t, b, s)
	before := b.Requests()
	st, err := b.Wait(ctx, name, backend.UntilRunning)
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	reqs := b.Requests() - before
	t.Logf("100 executors Running %.2fs after submit; %d API requests while waiting", time.Since(start).Seconds(), reqs)
	if st.Phase != backend.Running || len(st.Processes) != 101 {
		t.Fatalf("status %s, %d processes", st.Phase, len(st.Processes))
	}
	if reqs > 20 {
		t.Errorf("wait made %d requests: is it polling?", reqs)
	}
	st, err = b.Status(ctx, name)
	if err != nil || st.Phase != backend.Running {
		t.Fatalf("status: %s %v", st.Phase, err)
	}
	start = time.Now()
	if err := b.Stop(ctx, name); err != nil {
		t.Fatal(err)
	}
	t.Logf("stop of 101 pods: %.2fs", time.Since(start).Seconds())
	if left := labelled(t, cs, testNamespace, name); len(left) != 0 {
		t.Errorf("left after stop: %v", left)
	}
}

// Without enough GPUs, Wait's error (and Status) says why an executor
// waits: the scheduler's message.
func TestKubeUnschedulable(t *testing.T) {
	b, cs := kube(t, testNamespace)
	free := freeGPUs(t, cs)
	if free > 64 {
		t.Skipf("%d free GPUs: too many pods to fill them", free)
	}
	const name = "it-nogpu"
	s := testSpec(t, jobParams{name: name, executors: int(free) + 1, cuda: true})
	submit(t, b, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := b.Wait(ctx, name, backend.UntilRunning)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "Insufficient nvidia.com/gpu") {
		t.Fatalf("wait with %d executors for %d free GPUs: %v", free+1, free, err)
	}
	t.Logf("wait: %v", err)
	pending := 0
	for _, p := range st.Processes {
		if p.Phase == backend.Pending {
			pending++
			if !strings.Contains(p.Message, "unschedulable: ") {
				t.Errorf("%s: %q", p.Name, p.Message)
			}
		}
	}
	if pending != 1 {
		t.Errorf("%d pending, want 1: %+v", pending, st)
	}
}

// An executor killed during the job, on a real API server and job
// controller. kwok never ends a pod, so the test sets the pods' status as
// the kubelet would: executor-2's pod killed (exit code 137), its
// Job replaces it, then the aggregator and the executors exit 0. The job
// succeeded, Degraded by executor-2; Wait(UntilRunning) meanwhile is no
// failure either.
func TestKubeExecutorKilled(t *testing.T) {
	b, cs := kube(t, testNamespace)
	const name = "it-killed"
	s := testSpec(t, jobParams{name: name, executors: 2})
	submit(t, b, s)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := b.Wait(ctx, name, backend.UntilRunning); err != nil {
		t.Fatal(err)
	}
	killed := podOf(ctx, t, b, name, "executor-2", "")
	terminate(ctx, t, cs, killed, corev1.PodFailed, 137, "Error")
	st, err := b.Status(ctx, name)
	if err != nil || st.Phase == backend.Failed {
		t.Fatalf("status after the kill: %+v %v, want the job going on", st, err)
	}
	// The aggregator ends the job; the executors exit on their own, the
	// replacement of executor-2 (after the Job's backoff) among them.
	terminate(ctx, t, cs, podOf(ctx, t, b, name, "aggregator", ""), corev1.PodSucceeded, 0, "Completed")
	terminate(ctx, t, cs, podOf(ctx, t, b, name, "executor-1", ""), corev1.PodSucceeded, 0, "Completed")
	terminate(ctx, t, cs, podOf(ctx, t, b, name, "executor-2", killed.Name), corev1.PodSucceeded, 0, "Completed")
	st, err = b.Wait(ctx, name, backend.UntilDone)
	if err != nil {
		t.Fatalf("Wait(UntilDone): %v", err)
	}
	if st.Phase != backend.Succeeded {
		t.Errorf("phase %s, want Succeeded: %+v", st.Phase, st.Processes)
	}
	if p := st.Processes[2]; p.Restarts != 1 || !strings.Contains(p.Message, "exit code 137") {
		t.Errorf("executor-2: %+v, want one restart after exit code 137", p)
	}
	d, _ := st.Condition(backend.Degraded)
	degraded := d.Message
	if !strings.Contains(degraded, "executor-2") || !strings.Contains(degraded, "exit code 137") {
		t.Errorf("conditions %+v, want Degraded naming executor-2 and exit code 137", st.Conditions)
	}
	t.Logf("degraded: %s", degraded)
}

// podOf is the newest pod of a process other than not, followed by watch
// until there is one.
func podOf(ctx context.Context, t *testing.T, b *Backend, name, process, not string) *corev1.Pod {
	t.Helper()
	f, err := b.follow(ctx, selector(name), followJobs|followPods)
	if err != nil {
		t.Fatal(err)
	}
	defer f.stop()
	for {
		var pods []*corev1.Pod
		for _, p := range f.pods() {
			proc := "aggregator"
			if r, isExec := rankOf(p.Labels); isExec && p.Labels[job.LabelComponent] == componentExecutor {
				proc = "executor-" + strconv.Itoa(r)
			}
			if proc == process && p.Name != not && p.Status.Phase == corev1.PodRunning {
				pods = append(pods, p)
			}
		}
		if p := newest(pods); p != nil {
			return p
		}
		if err := f.next(ctx); err != nil {
			t.Fatalf("no running pod of %s: %v", process, err)
		}
	}
}

// terminate sets a pod's status as the kubelet does when its container
// exits.
func terminate(ctx context.Context, t *testing.T, cs kubernetes.Interface, p *corev1.Pod, phase corev1.PodPhase, code int32, reason string) {
	t.Helper()
	p = p.DeepCopy()
	p.Status.Phase = phase
	c := p.Spec.Containers[0].Name
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: c, Image: p.Spec.Containers[0].Image,
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason,
			StartedAt: metav1.Now(), FinishedAt: metav1.Now()}}}}
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady || p.Status.Conditions[i].Type == corev1.ContainersReady {
			p.Status.Conditions[i].Status = corev1.ConditionFalse
		}
	}
	if _, err := cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("pod %s to %s: %v", p.Name, phase, err)
	}
}
