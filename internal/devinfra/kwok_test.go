package devinfra

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/yaml"
)

// The nodes scripts/kube.sh created, as it wrote them (node_json): the Go
// objects must be the same nodes.
var scriptNodes = map[int]string{
	0: `{"apiVersion":"v1","kind":"Node","metadata":{"name":"kwok-gpu-0","annotations":{"kwok.x-k8s.io/node":"fake"},"labels":{"type":"kwok","kubernetes.io/hostname":"kwok-gpu-0","kubernetes.io/os":"linux","kubernetes.io/arch":"amd64","nvidia.com/gpu.present":"true"}},"spec":{"taints":[{"key":"nvidia.com/gpu","value":"present","effect":"NoSchedule"}],"podCIDR":"10.244.0.0/24","podCIDRs":["10.244.0.0/24"]},"status":{"capacity":{"cpu":"64","memory":"256Gi","pods":"250","nvidia.com/gpu":"8"},"allocatable":{"cpu":"64","memory":"256Gi","pods":"250","nvidia.com/gpu":"8"}}}`,
	5: `{"apiVersion":"v1","kind":"Node","metadata":{"name":"kwok-cpu-1","annotations":{"kwok.x-k8s.io/node":"fake"},"labels":{"type":"kwok","kubernetes.io/hostname":"kwok-cpu-1","kubernetes.io/os":"linux","kubernetes.io/arch":"amd64"}},"spec":{"podCIDR":"10.244.5.0/24","podCIDRs":["10.244.5.0/24"]},"status":{"capacity":{"cpu":"64","memory":"256Gi","pods":"250"},"allocatable":{"cpu":"64","memory":"256Gi","pods":"250"}}}`,
}

func TestKwokNodes(t *testing.T) {
	if len(KwokNodes) != 6 {
		t.Fatalf("%d nodes, want 4 GPU and 2 CPU nodes", len(KwokNodes))
	}
	names, cidrs := map[string]bool{}, map[string]bool{}
	gpus := 0
	for i, s := range KwokNodes {
		n, err := s.Node(i)
		if err != nil {
			t.Fatal(err)
		}
		if names[n.Name] || cidrs[n.Spec.PodCIDR] {
			t.Errorf("node %d: name %s or pod CIDR %s used twice", i, n.Name, n.Spec.PodCIDR)
		}
		names[n.Name], cidrs[n.Spec.PodCIDR] = true, true
		if n.Annotations[KwokAnnotation] != "fake" || n.Labels[KwokLabel] != "kwok" {
			t.Errorf("%s: kwok would not manage it, or tests not select it: %v %v", n.Name, n.Annotations, n.Labels)
		}
		g := n.Status.Allocatable[GPUResource]
		if s.GPU != (len(n.Spec.Taints) == 1) || s.GPU != (g.Value() == 8) || s.GPU != strings.HasPrefix(s.Name, "kwok-gpu-") {
			t.Errorf("%s: GPU %v but taints %v, %s GPUs", n.Name, s.GPU, n.Spec.Taints, g.String())
		}
		if s.GPU {
			gpus += int(g.Value())
		}
		if js, ok := scriptNodes[i]; ok {
			var want corev1.Node
			if err := json.Unmarshal([]byte(js), &want); err != nil {
				t.Fatal(err)
			}
			want.TypeMeta = n.TypeMeta
			if !equality.Semantic.DeepEqual(*n, want) {
				t.Errorf("node %d differs from the script's:\n got %+v\nwant %+v", i, *n, want)
			}
		}
	}
	if gpus != 32 {
		t.Errorf("%d GPUs in all, want 32 (launcher/backend/k8s's tests size jobs by it)", gpus)
	}
	for _, i := range []int{-1, 256} {
		if _, err := KwokNodes[0].Node(i); err == nil {
			t.Errorf("Node(%d) gave a pod CIDR", i)
		}
	}
}

// kwok's config is the repository's four stages, one YAML document each.
func TestKwokConfig(t *testing.T) {
	root, _ := filepath.Abs("../..")
	data, err := kwokConfig(root)
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(data), "\n---\n")
	if len(docs) != len(kwokStages) {
		t.Fatalf("%d documents, want %d", len(docs), len(kwokStages))
	}
	for i, d := range docs {
		var stage struct {
			Kind     string
			Metadata struct{ Name string }
		}
		if err := yaml.Unmarshal([]byte(d), &stage); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		if stage.Kind != "Stage" || stage.Metadata.Name != kwokStages[i] {
			t.Errorf("document %d is %s %q, want Stage %q", i, stage.Kind, stage.Metadata.Name, kwokStages[i])
		}
	}
	if _, err := kwokConfig(t.TempDir()); err == nil || !strings.Contains(err.Error(), "node-initialize.yaml") {
		t.Errorf("a repository without the stages: %v", err)
	}
}
