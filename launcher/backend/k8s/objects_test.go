package k8s

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"

	"github.com/fedscale/fedscale-go/launcher/job"
	"github.com/fedscale/fedscale-go/runtime/health"
	"github.com/fedscale/fedscale-go/runtime/mtls"
)

// testJob is a k8s job file; %s are the executors, data_path line,
// extra top-level lines, name, ps_port, use_cuda, save_checkpoint.
const testJob = `use_container: k8s
num_executors: %d
%s
%s
job_conf:
    - job_name: %s
    - ps_port: %d
    - use_cuda: %v
    - save_checkpoint: %v
    - log_path: $FEDSCALE_HOME/benchmark
`

type jobParams struct {
	name       string
	executors  int
	dataPath   string
	psPort     int
	cuda, ckpt bool
	restarts   *int   // --executor-restarts
	top        string // more top-level YAML, e.g. a k8s section
	opts       job.Options
}

func testSpec(t testing.TB, p jobParams) *job.Spec {
	t.Helper()
	if p.psPort == 0 {
		p.psPort = 30000
	}
	if p.executors == 0 {
		p.executors = 2
	}
	dp := ""
	if p.dataPath != "" {
		dp = "data_path: " + p.dataPath
	}
	data := fmt.Sprintf(testJob, p.executors, dp, p.top, p.name, p.psPort, p.cuda, p.ckpt)
	opts := p.opts
	opts.ExecutorRestarts = p.restarts
	opts.AggregatorImage, opts.ExecutorImage = "fedscale/fedscale-aggr:test", "fedscale/fedscale-exec:test"
	s, err := job.Parse([]byte(data), "/jobs/"+p.name+".yml", opts)
	if err != nil {
		t.Fatalf("job file:\n%s\n%v", data, err)
	}
	return s
}

func TestObjects(t *testing.T) {
	for _, tc := range []jobParams{
		{name: "cuda-data", executors: 3, dataPath: "/data/fedscale", cuda: true},
		{name: "cpu-nodata", executors: 1},
		{name: "cuda-nodata", executors: 2, cuda: true, psPort: 40000},
		{name: "cpu-data-ckpt", executors: 5, dataPath: "/mnt/benchmark", ckpt: true},
		{name: "cpu-restarts-1", executors: 2, restarts: ptr.To(1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testSpec(t, tc)
			o, err := buildObjects(s, "fs-test")
			if err != nil {
				t.Fatal(err)
			}
			ps := s.PsPort

			// Names, namespace, labels on every object.
			metas := []*metav1.ObjectMeta{&o.ConfigMap.ObjectMeta, &o.Service.ObjectMeta, &o.Aggregator.ObjectMeta}
			for _, j := range o.Executors {
				metas = append(metas, &j.ObjectMeta)
			}
			for _, sec := range o.Secrets {
				metas = append(metas, &sec.ObjectMeta)
			}
			for _, m := range metas {
				if m.Namespace != "fs-test" {
					t.Errorf("%s: namespace %q", m.Name, m.Namespace)
				}
				if m.Labels[job.LabelJob] != tc.name || m.Labels[job.LabelManagedBy] != job.ManagedBy ||
					m.Labels[job.LabelName] != "fedscale" || m.Labels[job.LabelInstance] != tc.name ||
					m.Labels[job.LabelPartOf] != "fedscale" || m.Labels[job.LabelVersion] != "test" || m.Labels[job.LabelAppComponent] == "" {
					t.Errorf("%s: labels %v", m.Name, m.Labels)
				}
				if len(m.OwnerReferences) != 0 {
					t.Errorf("%s: owner references before submit: %v", m.Name, m.OwnerReferences)
				}
			}
			if o.Namespace.Name != "fs-test" {
				t.Errorf("namespace %q", o.Namespace.Name)
			}
			if o.ConfigMap.Name != tc.name+"-config" || o.Service.Name != tc.name+"-aggregator" || o.Aggregator.Name != tc.name+"-aggregator" {
				t.Errorf("names %s %s %s", o.ConfigMap.Name, o.Service.Name, o.Aggregator.Name)
			}
			if len(o.Executors) != tc.executors || len(o.Secrets) != tc.executors+1 {
				t.Fatalf("%d executor Jobs and %d Secrets for %d executors", len(o.Executors), len(o.Secrets), tc.executors)
			}

			// The job file, as bytes, under job.yml.
			if o.ConfigMap.Data[job.ContainerConfigFile] != string(s.Config) {
				t.Errorf("configmap data %v", o.ConfigMap.Data)
			}

			// Headless Service for the aggregator.
			svc := o.Service.Spec
			if svc.ClusterIP != corev1.ClusterIPNone || !svc.PublishNotReadyAddresses ||
				svc.Selector[job.LabelJob] != tc.name || svc.Selector[job.LabelComponent] != "aggregator" {
				t.Errorf("service spec %+v", svc)
			}
			if len(svc.Ports) != 2 || svc.Ports[0].Port != int32(ps) || svc.Ports[1].Port != int32(ps+1) {
				t.Errorf("service ports %+v", svc.Ports)
			}

			// The aggregator Job: one pod, rank 0, retries only with checkpoints.
			aj := o.Aggregator.Spec
			if *aj.Completions != 1 || *aj.Parallelism != 1 {
				t.Errorf("aggregator completions/parallelism %d/%d", *aj.Completions, *aj.Parallelism)
			}
			wantBackoff, wantRestart := int32(0), corev1.RestartPolicyNever
			if tc.ckpt {
				wantBackoff, wantRestart = aggregatorRetriesWithCheckpoint, corev1.RestartPolicyOnFailure
			}
			if *aj.BackoffLimit != wantBackoff || aj.Template.Spec.RestartPolicy != wantRestart {
				t.Errorf("aggregator backoffLimit %d restartPolicy %s, want %d %s", *aj.BackoffLimit, aj.Template.Spec.RestartPolicy, wantBackoff, wantRestart)
			}
			if l := aj.Template.Labels; l[job.LabelComponent] != "aggregator" || l[job.LabelRank] != "0" || l[job.LabelJob] != tc.name || l[job.LabelManagedBy] != job.ManagedBy {
				t.Errorf("aggregator pod labels %v", l)
			}
			if o.Aggregator.Annotations[job.AnnotationJobFile] != s.File || o.Aggregator.Annotations[AnnotationExecutors] != strconv.Itoa(tc.executors) {
				t.Errorf("aggregator annotations %v", o.Aggregator.Annotations)
			}

			// The executors: one Job of one pod per rank, retried alone.
			wantRetries := int32(job.DefaultExecutorRestarts(job.BackendK8s))
			if tc.restarts != nil {
				wantRetries = int32(*tc.restarts)
			}
			for r, j := range o.Executors {
				ej := j.Spec
				if want := fmt.Sprintf("%s-executor-%d", tc.name, r+1); j.Name != want {
					t.Errorf("executor Job %s, want %s", j.Name, want)
				}
				if *ej.Completions != 1 || *ej.Parallelism != 1 || ej.CompletionMode != nil {
					t.Errorf("executor %d: job spec %+v", r+1, ej)
				}
				if ej.Template.Spec.RestartPolicy != corev1.RestartPolicyNever || *ej.BackoffLimit != wantRetries || *ej.PodReplacementPolicy != batchv1.Failed {
					t.Errorf("executor %d retries: restartPolicy %s backoffLimit %v podReplacementPolicy %v", r+1, ej.Template.Spec.RestartPolicy, *ej.BackoffLimit, *ej.PodReplacementPolicy)
				}
				if fp := ej.PodFailurePolicy; fp == nil || len(fp.Rules) != 1 || fp.Rules[0].Action != batchv1.PodFailurePolicyActionFailJob ||
					fp.Rules[0].OnExitCodes == nil || !slices.Equal(fp.Rules[0].OnExitCodes.Values, []int32{health.ExitJobStopped}) {
					t.Errorf("executor %d: podFailurePolicy %+v, want FailJob on exit code %d (the aggregator stopped the job)", r+1, fp, health.ExitJobStopped)
				}
				if l := ej.Template.Labels; l[job.LabelComponent] != "executor" || l[job.LabelAppComponent] != "executor" || l[job.LabelJob] != tc.name || l[job.LabelRank] != strconv.Itoa(r+1) {
					t.Errorf("executor %d: pod labels %v", r+1, l)
				}
				if got := j.Labels[job.LabelAppComponent]; got != "executor" {
					t.Errorf("%s: app.kubernetes.io/component %q, want executor", j.Name, got)
				}
				wantExec := []string{"--config", "/etc/fedscale/job.yml", "--job-name", tc.name, "--tls-dir", "/etc/fedscale-tls", "--rank", strconv.Itoa(r + 1),
					"--ps-ip", tc.name + "-aggregator", "--ps-port", strconv.Itoa(ps), "--http-port", strconv.Itoa(ps + 2)}
				if got := ej.Template.Spec.Containers[0].Args; !slices.Equal(got, wantExec) {
					t.Errorf("executor %d: args %q, want %q", r+1, got, wantExec)
				}
			}
			for _, c := range []struct {
				m    metav1.ObjectMeta
				want string
			}{{o.ConfigMap.ObjectMeta, "config"}, {o.Service.ObjectMeta, "aggregator"}, {o.Aggregator.ObjectMeta, "aggregator"}} {
				if got := c.m.Labels[job.LabelAppComponent]; got != c.want {
					t.Errorf("%s: app.kubernetes.io/component %q, want %q", c.m.Name, got, c.want)
				}
			}

			// Arguments.
			ej := o.Executors[0].Spec
			ac, ec := aj.Template.Spec.Containers[0], ej.Template.Spec.Containers[0]
			wantAgg := []string{"--config", "/etc/fedscale/job.yml", "--job-name", tc.name, "--tls-dir", "/etc/fedscale-tls", "--ps-port", strconv.Itoa(ps)}
			if !slices.Equal(ac.Args, wantAgg) {
				t.Errorf("aggregator args %q, want %q", ac.Args, wantAgg)
			}

			for _, c := range []struct {
				pod        corev1.PodTemplateSpec
				container  corev1.Container
				healthPort int
				gpu        bool
			}{
				{aj.Template, ac, ps + 1, false},
				{ej.Template, ec, ps + 2, tc.cuda},
			} {
				ct := c.container
				name := ct.Name
				if ct.ImagePullPolicy != corev1.PullIfNotPresent || !strings.HasSuffix(ct.Image, ":test") {
					t.Errorf("%s: image %s policy %s", name, ct.Image, ct.ImagePullPolicy)
				}
				if !slices.Contains(ct.Env, corev1.EnvVar{Name: "FEDSCALE_HOME", Value: "/FedScale"}) {
					t.Errorf("%s: env %v", name, ct.Env)
				}
				// Probes on the health port.
				port := -1
				for _, p := range ct.Ports {
					if p.Name == portHealth {
						port = int(p.ContainerPort)
					}
				}
				if port != c.healthPort {
					t.Errorf("%s: health port %d, want %d", name, port, c.healthPort)
				}
				for _, pr := range []struct {
					p    *corev1.Probe
					path string
				}{{ct.ReadinessProbe, "/readyz"}, {ct.LivenessProbe, "/healthz"}, {ct.StartupProbe, "/healthz"}} {
					if pr.p == nil || pr.p.HTTPGet == nil || pr.p.HTTPGet.Path != pr.path || pr.p.HTTPGet.Port.StrVal != portHealth {
						t.Errorf("%s: probe %+v, want %s on %s", name, pr.p, pr.path, portHealth)
					}
				}
				// Security context.
				sc := ct.SecurityContext
				if sc == nil || !*sc.RunAsNonRoot || *sc.RunAsUser != 65532 || *sc.RunAsGroup != 65532 ||
					*sc.AllowPrivilegeEscalation || !*sc.ReadOnlyRootFilesystem ||
					!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
					t.Errorf("%s: security context %+v", name, sc)
				}
				if *c.pod.Spec.AutomountServiceAccountToken {
					t.Errorf("%s: service account token mounted", name)
				}
				// GPUs only for executors of use_cuda jobs.
				q, hasGPU := ct.Resources.Limits[GPUResource]
				if hasGPU != c.gpu || (hasGPU && q.Value() != 1) {
					t.Errorf("%s: limits %v, want GPU %v", name, ct.Resources.Limits, c.gpu)
				}
				wantTol := []corev1.Toleration(nil)
				if c.gpu {
					wantTol = []corev1.Toleration{{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
				}
				if !slices.Equal(c.pod.Spec.Tolerations, wantTol) {
					t.Errorf("%s: tolerations %v, want %v", name, c.pod.Spec.Tolerations, wantTol)
				}
				// Mounts: the job file read-only, data_path as hostPath only when set.
				mounts := map[string]corev1.VolumeMount{}
				for _, m := range ct.VolumeMounts {
					mounts[m.Name] = m
				}
				if m := mounts[volConfig]; m.MountPath != "/etc/fedscale" || !m.ReadOnly {
					t.Errorf("%s: config mount %+v", name, m)
				}
				if m := mounts[volData]; m.MountPath != job.ContainerDataPath || m.ReadOnly {
					t.Errorf("%s: data mount %+v", name, m)
				}
				var hostPaths []string
				for _, v := range c.pod.Spec.Volumes {
					if v.HostPath != nil {
						hostPaths = append(hostPaths, v.HostPath.Path)
						if v.HostPath.Type == nil || *v.HostPath.Type != corev1.HostPathDirectory || v.Name != volData {
							t.Errorf("%s: hostPath volume %+v", name, v)
						}
					}
					if v.ConfigMap != nil && v.ConfigMap.Name != tc.name+"-config" {
						t.Errorf("%s: configmap volume %+v", name, v)
					}
				}
				var want []string
				if tc.dataPath != "" {
					want = []string{tc.dataPath}
				}
				if !slices.Equal(hostPaths, want) {
					t.Errorf("%s: hostPath volumes %v, want %v", name, hostPaths, want)
				}
			}
		})
	}
}

// Each pod mounts its own process's Secret and, from it, its own files:
// executor N's manifest names rank N's key and no other process's, so one
// executor pod cannot act as another rank.
func TestEachPodHoldsOnlyItsKey(t *testing.T) {
	s := testSpec(t, jobParams{name: "keys", executors: 3})
	o, err := buildObjects(s, "ns")
	if err != nil {
		t.Fatal(err)
	}
	pods := []corev1.PodTemplateSpec{o.Aggregator.Spec.Template}
	for _, j := range o.Executors {
		pods = append(pods, j.Spec.Template)
	}
	for rank, pod := range pods {
		want := mtls.FileNames(rank)
		var secrets []string
		for _, v := range pod.Spec.Volumes {
			if v.Secret == nil {
				continue
			}
			secrets = append(secrets, v.Secret.SecretName)
			var items []string
			for _, it := range v.Secret.Items {
				items = append(items, it.Key)
			}
			if !slices.Equal(items, want) {
				t.Errorf("rank %d mounts %v, want %v", rank, items, want)
			}
		}
		if w := []string{TLSSecretName("keys", rank)}; !slices.Equal(secrets, w) {
			t.Errorf("rank %d mounts Secrets %v, want %v", rank, secrets, w)
		}
		if sec := o.Secrets[rank]; sec.Name != TLSSecretName("keys", rank) || sec.Labels[job.LabelRank] != strconv.Itoa(rank) {
			t.Errorf("rank %d's Secret %s, labels %v", rank, sec.Name, sec.Labels)
		}
		// The manifest as printed: no other process's file is named.
		b, err := manifest(&batchv1.Job{Spec: batchv1.JobSpec{Template: pod}})
		if err != nil {
			t.Fatal(err)
		}
		for other := 0; other <= 3; other++ {
			if other != rank && strings.Contains(string(b), mtls.ProcessName(other)+".key") {
				t.Errorf("rank %d's pod names %s's key:\n%s", rank, mtls.ProcessName(other), b)
			}
		}
	}
}

func TestOwnerRef(t *testing.T) {
	agg := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "x-aggregator", UID: "1234"}}
	r := ownerRef(agg)
	if r.APIVersion != "batch/v1" || r.Kind != "Job" || r.Name != "x-aggregator" || r.UID != "1234" || *r.Controller || !*r.BlockOwnerDeletion {
		t.Errorf("owner reference %+v", r)
	}
}

// The health ports come from job.Spec.HealthPort, which job.Parse checked:
// the highest ps_port leaves ps_port+2 for every executor.
func TestHealthPortsAtTheTop(t *testing.T) {
	s := testSpec(t, jobParams{name: "p", executors: 5, psPort: 65533})
	if agg, exec := healthPorts(s); agg != 65534 || exec != 65535 {
		t.Errorf("health ports %d %d, want 65534 65535", agg, exec)
	}
	if _, err := buildObjects(s, "ns"); err != nil {
		t.Error(err)
	}
}

// decodePlan parses Plan's YAML documents into typed objects.
func decodePlan(t testing.TB, plan string) []runtime.Object {
	t.Helper()
	var out []runtime.Object
	for i, doc := range strings.Split(plan, "\n---\n")[1:] {
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("document %d: %v\n%s", i, err, doc)
		}
		out = append(out, obj)
	}
	return out
}

// Plan needs no cluster: a kubeconfig whose server is not there will do.
// The Namespace object is printed only when asked (PlanNamespace), so
// kubectl delete -f of a plan leaves the namespace.
func TestPlanOffline(t *testing.T) {
	kc := deadKubeconfig(t)
	for _, withNS := range []bool{false, true} {
		b, err := New(Options{Kubeconfig: kc, PlanNamespace: withNS})
		if err != nil {
			t.Fatal(err)
		}
		s := testSpec(t, jobParams{name: "plan", executors: 2, dataPath: "/data", cuda: true})
		var out bytes.Buffer
		if err := b.Plan(&out, s); err != nil {
			t.Fatal(err)
		}
		plan := out.String()
		if withNS {
			t.Logf("plan:\n%s", plan)
		}
		for _, bad := range []string{"status:", "creationTimestamp", "resources: {}", "spec: {}", "null"} {
			if strings.Contains(plan, bad) {
				t.Errorf("plan has %q", bad)
			}
		}
		objs := decodePlan(t, plan)
		var kinds []string
		for _, o := range objs {
			kinds = append(kinds, o.GetObjectKind().GroupVersionKind().Kind)
		}
		want := []string{"ConfigMap", "Secret", "Secret", "Secret", "Service", "Job", "Job", "Job"}
		if withNS {
			want = append([]string{"Namespace"}, want...)
			if ns := objs[0].(*corev1.Namespace); ns.Name != DefaultNamespace {
				t.Errorf("namespace %s", ns.Name)
			}
			objs = objs[1:]
		}
		if !slices.Equal(kinds, want) {
			t.Fatalf("kinds %v, want %v", kinds, want)
		}
		// The plan names the Secrets and the keys each pod mounts, never a
		// key or certificate.
		for _, o := range objs[1:4] {
			if sec := o.(*corev1.Secret); len(sec.Data)+len(sec.StringData) != 0 {
				t.Errorf("the plan shows TLS material in %s: %v", sec.Name, sec.Data)
			}
		}
		if strings.Contains(plan, "PRIVATE KEY") || strings.Contains(plan, "CERTIFICATE") {
			t.Error("the plan shows TLS material")
		}
		ex := objs[7].(*batchv1.Job)
		if ex.Name != "plan-executor-2" || ex.Spec.Template.Spec.Containers[0].Resources.Limits.Name(GPUResource, "").Value() != 1 {
			t.Errorf("executor 2's job %+v", ex.Spec)
		}
		if b.Requests() != 0 {
			t.Errorf("plan made %d requests", b.Requests())
		}
	}
	// The offline planner (no kubeconfig at all) prints the same.
	s := testSpec(t, jobParams{name: "plan", executors: 2, dataPath: "/data", cuda: true})
	var a, o bytes.Buffer
	on, err := New(Options{Kubeconfig: kc})
	if err != nil {
		t.Fatal(err)
	}
	if err := on.Plan(&a, s); err != nil {
		t.Fatal(err)
	}
	if err := NewOffline(Options{}).Plan(&o, s); err != nil {
		t.Fatal(err)
	}
	if a.String() != o.String() {
		t.Errorf("offline plan differs:\n%s\nwant\n%s", o.String(), a.String())
	}
}

// deadKubeconfig names a server where nothing listens.
func deadKubeconfig(t testing.TB) string {
	t.Helper()
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	const cfg = `apiVersion: v1
kind: Config
clusters:
- name: dead
  cluster:
    server: https://127.0.0.1:1
    insecure-skip-tls-verify: true
users:
- name: u
  user:
    token: t
contexts:
- name: dead
  context: {cluster: dead, user: u}
current-context: dead
`
	if err := os.WriteFile(kc, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return kc
}
