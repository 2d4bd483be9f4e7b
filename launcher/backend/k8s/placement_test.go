package k8s

import (
	"maps"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// Options.NodeSelector and Tolerations reach both pod templates, after the
// component's own GPU toleration, and the plan shows them.
func TestPlacement(t *testing.T) {
	sel := map[string]string{"pool": "fl"}
	tol := corev1.Toleration{Key: "pool", Operator: corev1.TolerationOpEqual, Value: "fl", Effect: corev1.TaintEffectNoSchedule}
	for _, cuda := range []bool{false, true} {
		o, err := buildObjects(testSpec(t, jobParams{name: "placed", cuda: cuda}), "ns")
		if err != nil {
			t.Fatal(err)
		}
		placement{nodeSelector: sel, tolerations: []corev1.Toleration{tol}}.apply(o)
		sel["pool"] = "changed later" // the templates hold their own copy
		for _, spec := range []corev1.PodSpec{o.Aggregator.Spec.Template.Spec, o.Executors.Spec.Template.Spec} {
			if !maps.Equal(spec.NodeSelector, map[string]string{"pool": "fl"}) {
				t.Errorf("cuda=%v: nodeSelector %v", cuda, spec.NodeSelector)
			}
			n := len(spec.Tolerations)
			if n == 0 || spec.Tolerations[n-1] != tol {
				t.Errorf("cuda=%v: tolerations %v, want ours last", cuda, spec.Tolerations)
			}
		}
		if cuda && o.Executors.Spec.Template.Spec.Tolerations[0].Key != string(GPUResource) {
			t.Errorf("the GPU toleration is gone: %v", o.Executors.Spec.Template.Spec.Tolerations)
		}
		sel["pool"] = "fl"
	}
	// No placement: the templates are as buildObjects made them.
	o, err := buildObjects(testSpec(t, jobParams{name: "free"}), "ns")
	if err != nil {
		t.Fatal(err)
	}
	placement{}.apply(o)
	if s := o.Aggregator.Spec.Template.Spec; s.NodeSelector != nil || s.Tolerations != nil {
		t.Errorf("empty placement changed the pod spec: %v %v", s.NodeSelector, s.Tolerations)
	}
}
