package config

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// K8s is the job file's k8s section: keys of our own for the launcher's
// Kubernetes backend (the runtime's processes ignore it). This package owns
// the names and reads the values as written; launcher/job checks them
// against Kubernetes' rules (quantities, label syntax) and fills in the
// defaults.
//
//	k8s:
//	  data_pvc: fedscale-data          # a PersistentVolumeClaim at data_path's place, instead of the hostPath
//	  service_account: fedscale-job
//	  priority_class: batch-low
//	  node_selector: {pool: fl}
//	  tolerations: [{key: pool, operator: Equal, value: fl, effect: NoSchedule}]
//	  image_pull_secrets: [regcred]
//	  aggregator_cpu: 500m             # requests; memory limits default to twice the request
//	  aggregator_memory: 1Gi
//	  executor_cpu: "2"
//	  executor_memory: 4Gi
//	  executor_memory_limit: 6Gi
type K8s struct {
	DataPVC          string
	ServiceAccount   string
	PriorityClass    string
	NodeSelector     map[string]string
	Tolerations      []Toleration
	ImagePullSecrets []string
	Aggregator       Resources
	Executor         Resources
}

// Resources are one component's requests (and memory limit) as written:
// Kubernetes quantities, "" when not given.
type Resources struct {
	CPU, Memory, MemoryLimit string
}

// Toleration is one entry of k8s.tolerations, spelled as in a pod spec.
type Toleration struct {
	Key, Operator, Value, Effect string
	Seconds                      *int64 // tolerationSeconds
}

// K8sKeys are the keys of the k8s section, for messages and completion.
var K8sKeys = []string{
	"aggregator_cpu", "aggregator_memory", "aggregator_memory_limit",
	"data_pvc", "executor_cpu", "executor_memory", "executor_memory_limit",
	"image_pull_secrets", "node_selector", "priority_class", "service_account", "tolerations",
}

var tolerationKeys = []string{"effect", "key", "operator", "tolerationSeconds", "value"}

// Bounds on the k8s section's lists and maps: a job needs a handful.
const maxK8sItems = 64

func (p *parser) k8s(j *Job, v *yaml.Node) {
	if isNull(v) {
		return
	}
	if v.Kind != yaml.MappingNode {
		p.errorf(v.Line, "k8s: expected a map of keys (%s), got %s", strings.Join(K8sKeys, ", "), describe(v))
		return
	}
	k := &j.K8s
	seen := make(map[string]bool)
	for i := 0; i+1 < len(v.Content); i += 2 {
		kn, val := resolve(v.Content[i]), resolve(v.Content[i+1])
		key, ok := p.mapKey(kn, "k8s")
		if !ok {
			continue
		}
		if seen[key] {
			p.errorf(kn.Line, "duplicate k8s key %q", clip(key))
			continue
		}
		seen[key] = true
		p.lines["k8s."+key] = kn.Line
		var err error
		switch key {
		case "data_pvc":
			k.DataPVC, err = toString(val)
		case "service_account":
			k.ServiceAccount, err = toString(val)
		case "priority_class":
			k.PriorityClass, err = toString(val)
		case "node_selector":
			k.NodeSelector = p.stringMap(val, "k8s.node_selector")
		case "tolerations":
			k.Tolerations = p.tolerations(val)
		case "image_pull_secrets":
			k.ImagePullSecrets = p.stringList(val, "k8s.image_pull_secrets")
			if len(k.ImagePullSecrets) > maxK8sItems {
				p.errorf(val.Line, "k8s.image_pull_secrets: %d entries; at most %d", len(k.ImagePullSecrets), maxK8sItems)
			}
		case "aggregator_cpu":
			k.Aggregator.CPU, err = toString(val)
		case "aggregator_memory":
			k.Aggregator.Memory, err = toString(val)
		case "aggregator_memory_limit":
			k.Aggregator.MemoryLimit, err = toString(val)
		case "executor_cpu":
			k.Executor.CPU, err = toString(val)
		case "executor_memory":
			k.Executor.Memory, err = toString(val)
		case "executor_memory_limit":
			k.Executor.MemoryLimit, err = toString(val)
		default:
			p.errs = append(p.errs, fmt.Errorf("%s%w", p.loc(kn.Line), unknownKeyError("k8s", key, K8sKeys)))
		}
		if err != nil {
			p.errorf(val.Line, "k8s.%s: %v", key, err)
		}
	}
}

// stringMap reads a map of strings (labels).
func (p *parser) stringMap(v *yaml.Node, key string) map[string]string {
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		p.errorf(v.Line, "%s: expected a map (name: value), got %s", key, describe(v))
		return nil
	}
	if len(v.Content)/2 > maxK8sItems {
		p.errorf(v.Line, "%s: %d entries; at most %d", key, len(v.Content)/2, maxK8sItems)
		return nil
	}
	out := make(map[string]string, len(v.Content)/2)
	for i := 0; i+1 < len(v.Content); i += 2 {
		kn, val := resolve(v.Content[i]), resolve(v.Content[i+1])
		name, ok := p.mapKey(kn, key)
		if !ok {
			continue
		}
		if _, dup := out[name]; dup {
			p.errorf(kn.Line, "%s: duplicate key %q", key, clip(name))
			continue
		}
		s, err := toString(val)
		if err != nil {
			p.errorf(val.Line, "%s.%s: %v", key, clip(name), err)
			continue
		}
		out[name] = s
	}
	return out
}

func (p *parser) tolerations(v *yaml.Node) []Toleration {
	items := p.list(v, "k8s.tolerations")
	if len(items) > maxK8sItems {
		p.errorf(v.Line, "k8s.tolerations: %d entries; at most %d", len(items), maxK8sItems)
		return nil
	}
	var out []Toleration
	for _, it := range items {
		if it.Kind != yaml.MappingNode {
			p.errorf(it.Line, "k8s.tolerations: each entry is a map (key, operator, value, effect, tolerationSeconds), got %s", describe(it))
			continue
		}
		var t Toleration
		seen := make(map[string]bool)
		for i := 0; i+1 < len(it.Content); i += 2 {
			kn, val := resolve(it.Content[i]), resolve(it.Content[i+1])
			key, ok := p.mapKey(kn, "k8s.tolerations")
			if !ok {
				continue
			}
			if seen[key] {
				p.errorf(kn.Line, "k8s.tolerations: duplicate key %q", clip(key))
				continue
			}
			seen[key] = true
			var err error
			switch key {
			case "key":
				t.Key, err = toString(val)
			case "operator":
				t.Operator, err = toString(val)
			case "value":
				t.Value, err = toString(val)
			case "effect":
				t.Effect, err = toString(val)
			case "tolerationSeconds":
				var n int64
				if n, err = toInt64(val); err == nil {
					t.Seconds = &n
				}
			default:
				p.errs = append(p.errs, fmt.Errorf("%s%w", p.loc(kn.Line), unknownKeyError("k8s.tolerations", key, tolerationKeys)))
			}
			if err != nil {
				p.errorf(val.Line, "k8s.tolerations.%s: %v", key, err)
			}
		}
		out = append(out, t)
	}
	return out
}
