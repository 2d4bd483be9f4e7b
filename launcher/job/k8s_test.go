package job

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/fedscale/fedscale-go/runtime/config"
	"github.com/fedscale/fedscale-go/runtime/version"
)

// k8sJob is a k8s job file with extra top-level lines and job_conf items.
func k8sJob(top string, conf ...string) []byte {
	s := "use_container: k8s\n" + top + "\njob_conf:\n    - job_name: kj\n"
	for _, c := range conf {
		s += "    - " + c + "\n"
	}
	return []byte(s)
}

func TestK8sSettings(t *testing.T) {
	s, err := Parse(k8sJob(`k8s:
  data_pvc: fl-data
  service_account: fl-runner
  priority_class: batch-low
  node_selector: {pool: fl}
  tolerations: [{key: pool, operator: Equal, value: fl, effect: NoSchedule}]
  image_pull_secrets: [regcred]
  aggregator_cpu: "1"
  aggregator_memory: 2Gi
  executor_cpu: 1.5
  executor_memory: 3Gi
  executor_memory_limit: 3Gi`), "k.yml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	k := s.K8s
	if k.DataPVC != "fl-data" || k.ServiceAccount != "fl-runner" || k.PriorityClass != "batch-low" ||
		!maps.Equal(k.NodeSelector, map[string]string{"pool": "fl"}) || !slices.Equal(k.ImagePullSecrets, []string{"regcred"}) ||
		len(k.Tolerations) != 1 || k.Tolerations[0] != (config.Toleration{Key: "pool", Operator: "Equal", Value: "fl", Effect: "NoSchedule"}) {
		t.Errorf("k8s settings %+v", k)
	}
	for _, q := range []struct{ got, want string }{
		{k.Aggregator.CPU.String(), "1"}, {k.Aggregator.Memory.String(), "2Gi"}, {k.Aggregator.MemoryLimit.String(), "4Gi"},
		{k.Executor.CPU.String(), "1500m"}, {k.Executor.Memory.String(), "3Gi"}, {k.Executor.MemoryLimit.String(), "3Gi"},
	} {
		if q.got != q.want {
			t.Errorf("resource %s, want %s", q.got, q.want)
		}
	}

	// Flags replace the keys.
	s, err = Parse(k8sJob("k8s:\n  node_selector: {pool: fl}\n  service_account: a\n  image_pull_secrets: [x]"), "k.yml", Options{
		NodeSelector: map[string]string{"zone": "b"}, Tolerations: []string{"nvidia.com/gpu:NoSchedule", "pool=fl"},
		ServiceAccount: "b", PriorityClass: "p", ImagePullSecrets: []string{},
	})
	if err != nil {
		t.Fatal(err)
	}
	k = s.K8s
	wantTol := []config.Toleration{{Key: "nvidia.com/gpu", Operator: "Exists", Effect: "NoSchedule"}, {Key: "pool", Operator: "Equal", Value: "fl"}}
	if !maps.Equal(k.NodeSelector, map[string]string{"zone": "b"}) || k.ServiceAccount != "b" || k.PriorityClass != "p" ||
		len(k.ImagePullSecrets) != 0 || !slices.Equal(k.Tolerations, wantTol) {
		t.Errorf("flags over keys: %+v", k)
	}
}

// Memory defaults follow the model: a bigger model, no smaller a request
// (the small ones all get the base size);
// the limit is twice the request; CPU defaults are fixed.
func TestK8sDefaultResources(t *testing.T) {
	var prevExec int64
	for _, m := range []string{"logistic", "lenet5", "resnet18", "resnet50"} {
		s, err := Parse(k8sJob("", "model: "+m, "data_set: cifar10"), "k.yml", Options{})
		if err != nil {
			t.Fatal(err)
		}
		a, e := s.K8s.Aggregator, s.K8s.Executor
		if a.CPU.String() != DefaultAggregatorCPU || e.CPU.String() != DefaultExecutorCPU {
			t.Errorf("%s: cpu %s %s", m, a.CPU.String(), e.CPU.String())
		}
		if e.Memory.Value() < prevExec || e.Memory.Value() < a.Memory.Value() || e.Memory.Value()%(64<<20) != 0 {
			t.Errorf("%s: memory aggregator %s executor %s (previous model's executor %d)", m, a.Memory.String(), e.Memory.String(), prevExec)
		}
		if a.MemoryLimit.Value() != 2*a.Memory.Value() || e.MemoryLimit.Value() != 2*e.Memory.Value() {
			t.Errorf("%s: limits %s %s", m, a.MemoryLimit.String(), e.MemoryLimit.String())
		}
		t.Logf("%s: aggregator %s, executor %s", m, a.Memory.String(), e.Memory.String())
		prevExec = e.Memory.Value()
	}
	if small, err := Parse(k8sJob("", "model: logistic"), "k.yml", Options{}); err != nil || small.K8s.Executor.Memory.Value() >= prevExec {
		t.Errorf("logistic's executor memory is not below resnet50's (%v)", err)
	}
}

func TestK8sSettingsErrors(t *testing.T) {
	for _, tc := range []struct {
		name, top string
		opts      Options
		want      string
	}{
		{"cpu word", "k8s: {executor_cpu: lots}", Options{}, `k.yml: k8s.executor_cpu "lots": want a Kubernetes quantity`},
		{"memory negative", "k8s: {aggregator_memory: -1Gi}", Options{}, `k.yml: k8s.aggregator_memory "-1Gi": must be positive`},
		{"limit below request", "k8s: {executor_memory: 4Gi, executor_memory_limit: 1Gi}", Options{}, "k8s.executor_memory_limit 1Gi is below k8s.executor_memory 4Gi"},
		{"pvc name", "k8s: {data_pvc: My_Data}", Options{}, `k8s.data_pvc "My_Data": not a Kubernetes object name`},
		{"pvc and data_path", "data_path: /data\nk8s: {data_pvc: d}", Options{}, "give data_path (a folder on every node) or k8s.data_pvc (a PersistentVolumeClaim), not both"},
		{"service account", "k8s: {service_account: -a}", Options{}, `k8s.service_account "-a"`},
		{"service account flag", "", Options{ServiceAccount: "A B"}, `--service-account "A B"`},
		{"priority class flag", "", Options{PriorityClass: "x/y"}, `--priority-class "x/y"`},
		{"pull secret", "k8s: {image_pull_secrets: [ok, 'no way']}", Options{}, `k8s.image_pull_secrets "no way"`},
		{"node selector key", "k8s: {node_selector: {'a b': c}}", Options{}, `k8s.node_selector: label "a b"`},
		{"node selector value flag", "", Options{NodeSelector: map[string]string{"pool": "a b"}}, `--node-selector: pool="a b"`},
		{"toleration operator", "k8s: {tolerations: [{key: a, operator: In}]}", Options{}, `k8s.tolerations[0]: operator "In": want Equal or Exists`},
		{"toleration effect", "k8s: {tolerations: [{key: a, effect: Never}]}", Options{}, `effect "Never": want NoSchedule, PreferNoSchedule, NoExecute`},
		{"toleration exists value", "k8s: {tolerations: [{key: a, operator: Exists, value: b}]}", Options{}, "operator Exists takes no value"},
		{"toleration seconds", "k8s: {tolerations: [{key: a, tolerationSeconds: 5}]}", Options{}, "tolerationSeconds applies to effect NoExecute only"},
		{"toleration flag no key", "", Options{Tolerations: []string{"=v"}}, `--toleration "=v": no key`},
		{"toleration flag effect", "", Options{Tolerations: []string{"a:Sometimes"}}, `--toleration "a:Sometimes": effect "Sometimes"`},
		{"toleration flag empty effect", "", Options{Tolerations: []string{"a:"}}, `--toleration "a:": empty effect`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(k8sJob(tc.top), "k.yml", tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// use_cuda picks the CUDA executor image by default; the aggregator, and
// a named image, stay as they are.
func TestCUDAImage(t *testing.T) {
	for _, tc := range []struct {
		cuda       bool
		opts       Options
		exec, aggr string
	}{
		{false, Options{}, DefaultExecutorRepo + ":" + version.Version, DefaultAggregatorRepo + ":" + version.Version},
		{true, Options{}, DefaultExecutorRepo + ":" + version.Version + "-cuda" + version.CUDA, DefaultAggregatorRepo + ":" + version.Version},
		{true, Options{ExecutorImage: "reg/e:1"}, "reg/e:1", DefaultAggregatorRepo + ":" + version.Version},
	} {
		conf := "use_cuda: False"
		if tc.cuda {
			conf = "use_cuda: True"
		}
		s, err := Parse(k8sJob("", conf), "k.yml", tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		if s.ExecutorImage != tc.exec || s.AggregatorImage != tc.aggr {
			t.Errorf("cuda %v %+v: images %s %s, want %s %s", tc.cuda, tc.opts, s.AggregatorImage, s.ExecutorImage, tc.aggr, tc.exec)
		}
	}
}

func TestLabels(t *testing.T) {
	s, err := Parse(k8sJob("aggregator_image: reg/a:v1.2.3\nexecutor_image: reg:5000/e@sha256:"+strings.Repeat("a", 64)), "k.yml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	ps := s.Processes("/c", "h", "/t")
	want := map[string]string{
		LabelJob: "kj", LabelManagedBy: ManagedBy, LabelName: "fedscale", LabelInstance: "kj", LabelPartOf: "fedscale",
		LabelComponent: "aggregator", LabelAppComponent: "aggregator", LabelRank: "0", LabelVersion: "v1.2.3",
	}
	if got := s.Labels(&ps[0]); !maps.Equal(got, want) {
		t.Errorf("aggregator labels %v, want %v", got, want)
	}
	// A digest only: this launcher's version.
	if got := s.Labels(&ps[1]); got[LabelVersion] != version.Version || got[LabelAppComponent] != "executor" || got[LabelRank] != "1" {
		t.Errorf("executor labels %v", got)
	}
	if got := s.Labels(nil); got[LabelVersion] != "v1.2.3" || got[LabelComponent] != "" || got[LabelInstance] != "kj" {
		t.Errorf("shared labels %v", got)
	}
}
