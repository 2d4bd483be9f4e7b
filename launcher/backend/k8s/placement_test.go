package k8s

import (
	"maps"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	"github.com/fedscale/fedscale-go/launcher/job"
)

// The job's k8s settings (keys or flags) reach both pod templates:
// resources per component, placement after the component's own GPU
// toleration, identity, pull secrets, and the data volume.
func TestPodSettings(t *testing.T) {
	gpuTol := corev1.Toleration{Key: string(GPUResource), Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
	poolTol := corev1.Toleration{Key: "pool", Operator: corev1.TolerationOpEqual, Value: "fl", Effect: corev1.TaintEffectNoSchedule}
	q := resource.MustParse
	for _, tc := range []struct {
		name string
		p    jobParams
		// what both pods get
		selector map[string]string
		tols     []corev1.Toleration // the executor's; the aggregator's lack the GPU one
		sa, prio string
		secrets  []corev1.LocalObjectReference
		data     corev1.VolumeSource
		// requests and limits, aggregator then executor; none: the
		// job's defaults (launcher/job sizes them), with a GPU or not
		agg, exec corev1.ResourceRequirements
		gpu       bool
	}{{
		name: "defaults cpu",
		p:    jobParams{name: "d", dataPath: "/data"},
		data: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/data", Type: ptr.To(corev1.HostPathDirectory)}},
	}, {
		name: "defaults cuda",
		p:    jobParams{name: "g", cuda: true},
		tols: []corev1.Toleration{gpuTol},
		data: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}},
		gpu:  true,
	}, {
		name: "keys",
		p: jobParams{name: "k", cuda: true, top: `k8s:
  data_pvc: fl-data
  service_account: fl
  priority_class: low
  node_selector: {pool: fl}
  tolerations: [{key: pool, operator: Equal, value: fl, effect: NoSchedule}]
  image_pull_secrets: [regcred, mirror]
  aggregator_cpu: "1"
  aggregator_memory: 1Gi
  executor_cpu: "4"
  executor_memory: 8Gi
  executor_memory_limit: 8Gi`},
		selector: map[string]string{"pool": "fl"},
		tols:     []corev1.Toleration{gpuTol, poolTol},
		sa:       "fl", prio: "low",
		secrets: []corev1.LocalObjectReference{{Name: "regcred"}, {Name: "mirror"}},
		data:    corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "fl-data"}},
		agg: corev1.ResourceRequirements{Requests: corev1.ResourceList{"cpu": q("1"), "memory": q("1Gi")},
			Limits: corev1.ResourceList{"memory": q("2Gi")}},
		exec: corev1.ResourceRequirements{Requests: corev1.ResourceList{"cpu": q("4"), "memory": q("8Gi")},
			Limits: corev1.ResourceList{"memory": q("8Gi"), GPUResource: q("1")}},
	}, {
		name: "flags over keys",
		p: jobParams{name: "f", top: "k8s: {node_selector: {pool: x}, service_account: x}", opts: job.Options{
			NodeSelector: map[string]string{"pool": "fl"}, Tolerations: []string{"pool=fl:NoSchedule"},
			ServiceAccount: "fl", PriorityClass: "low", ImagePullSecrets: []string{"regcred"},
		}},
		selector: map[string]string{"pool": "fl"},
		tols:     []corev1.Toleration{poolTol},
		sa:       "fl", prio: "low",
		secrets: []corev1.LocalObjectReference{{Name: "regcred"}},
		data:    corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			s := testSpec(t, tc.p)
			o, err := buildObjects(s, "ns")
			if err != nil {
				t.Fatal(err)
			}
			if tc.agg.Requests == nil {
				k := s.K8s
				tc.agg = corev1.ResourceRequirements{Requests: corev1.ResourceList{"cpu": q(job.DefaultAggregatorCPU), "memory": k.Aggregator.Memory},
					Limits: corev1.ResourceList{"memory": k.Aggregator.MemoryLimit}}
				tc.exec = corev1.ResourceRequirements{Requests: corev1.ResourceList{"cpu": q(job.DefaultExecutorCPU), "memory": k.Executor.Memory},
					Limits: corev1.ResourceList{"memory": k.Executor.MemoryLimit}}
				if tc.gpu {
					tc.exec.Limits[GPUResource] = q("1")
				}
			}
			type pod struct {
				name string
				spec corev1.PodSpec
				tols []corev1.Toleration
				res  corev1.ResourceRequirements
			}
			pods := []pod{{"aggregator", o.Aggregator.Spec.Template.Spec, slices.DeleteFunc(slices.Clone(tc.tols), func(t corev1.Toleration) bool { return t == gpuTol }), tc.agg}}
			for _, j := range o.Executors {
				pods = append(pods, pod{j.Name, j.Spec.Template.Spec, tc.tols, tc.exec})
			}
			for _, c := range pods {
				sp := c.spec
				if !maps.Equal(sp.NodeSelector, tc.selector) {
					t.Errorf("%s: nodeSelector %v, want %v", c.name, sp.NodeSelector, tc.selector)
				}
				if !slices.Equal(sp.Tolerations, c.tols) && len(sp.Tolerations)+len(c.tols) > 0 {
					t.Errorf("%s: tolerations %v, want %v", c.name, sp.Tolerations, c.tols)
				}
				if sp.ServiceAccountName != tc.sa || sp.PriorityClassName != tc.prio || !slices.Equal(sp.ImagePullSecrets, tc.secrets) {
					t.Errorf("%s: serviceAccount %q priorityClass %q imagePullSecrets %v", c.name, sp.ServiceAccountName, sp.PriorityClassName, sp.ImagePullSecrets)
				}
				if *sp.AutomountServiceAccountToken {
					t.Errorf("%s: the service account's token is mounted", c.name)
				}
				for _, v := range sp.Volumes {
					if v.Name == volData && !equalSource(v.VolumeSource, tc.data) {
						t.Errorf("%s: data volume %+v, want %+v", c.name, v.VolumeSource, tc.data)
					}
				}
				if got := sp.Containers[0].Resources; !sameList(got.Requests, c.res.Requests) || !sameList(got.Limits, c.res.Limits) {
					t.Errorf("%s: resources requests %v limits %v, want %v %v", c.name, got.Requests, got.Limits, c.res.Requests, c.res.Limits)
				}
			}
		})
	}
}

func sameList(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || v.Cmp(w) != 0 {
			return false
		}
	}
	return true
}

func equalSource(a, b corev1.VolumeSource) bool {
	switch {
	case b.HostPath != nil:
		return a.HostPath != nil && a.HostPath.Path == b.HostPath.Path && *a.HostPath.Type == *b.HostPath.Type
	case b.PersistentVolumeClaim != nil:
		return a.PersistentVolumeClaim != nil && *a.PersistentVolumeClaim == *b.PersistentVolumeClaim
	case b.EmptyDir != nil:
		return a.EmptyDir != nil && a.HostPath == nil && a.PersistentVolumeClaim == nil
	}
	return false
}
