package job

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/fedscale/fedscale-go/runtime/config"
	"github.com/fedscale/fedscale-go/runtime/data"
	"github.com/fedscale/fedscale-go/runtime/model"
)

// K8s is what the Kubernetes backend needs beyond the processes: the job
// file's k8s section (runtime/config owns its keys) with the command line's
// flags over it, checked against Kubernetes' rules, and the resources
// filled in where neither says.
type K8s struct {
	DataPVC          string // a PersistentVolumeClaim mounted at ContainerDataPath instead of data_path's hostPath
	ServiceAccount   string // "" leaves the namespace's default
	PriorityClass    string
	NodeSelector     map[string]string
	Tolerations      []config.Toleration
	ImagePullSecrets []string
	Aggregator       Resources
	Executor         Resources
}

// Resources are one component's container resources: CPU and memory
// requests and a memory limit. No CPU limit: throttling a trainer only
// slows its round, while the request already reserves its share.
type Resources struct {
	CPU, Memory, MemoryLimit resource.Quantity
}

// Defaults of the k8s section's resources. The CPU requests are floors
// (an executor trains on every core it gets): small enough that a job of
// two executors fits a 2-core node. Memory comes from the model
// (runtime/model.ProcessMemory); its limit is twice the request, headroom
// for what the estimate does not see.
const (
	DefaultAggregatorCPU = "250m"
	DefaultExecutorCPU   = "500m"
	memoryLimitFactor    = 2
)

// Tolerations' operators and effects, as the API spells them.
var (
	tolerationOperators = []string{"Equal", "Exists"}
	tolerationEffects   = []string{"NoSchedule", "PreferNoSchedule", "NoExecute"}
)

// k8sSettings resolves Spec.K8s from the job file and opts. Every value
// is checked here, so --dry-run rejects what the API server would.
func (s *Spec) k8sSettings(opts Options) error {
	in := s.Job.K8s
	k := &s.K8s
	key := func(name string) string { return s.File + ": k8s." + name }
	k.DataPVC = in.DataPVC
	if k.DataPVC != "" {
		if err := dnsSubdomain(k.DataPVC); err != nil {
			return fmt.Errorf("%s %q: %v", key("data_pvc"), k.DataPVC, err)
		}
		if s.DataPath != "" {
			return fmt.Errorf("%s: give data_path (a folder on every node) or k8s.data_pvc (a PersistentVolumeClaim), not both", s.File)
		}
	}

	type named struct {
		flag, key, file, opt string
		to                   *string
	}
	for _, n := range []named{
		{"--service-account", "service_account", in.ServiceAccount, opts.ServiceAccount, &k.ServiceAccount},
		{"--priority-class", "priority_class", in.PriorityClass, opts.PriorityClass, &k.PriorityClass},
	} {
		where, v := key(n.key), n.file
		if n.opt != "" {
			where, v = n.flag, n.opt
		}
		if v == "" {
			continue
		}
		if err := dnsSubdomain(v); err != nil {
			return fmt.Errorf("%s %q: %v", where, v, err)
		}
		*n.to = v
	}

	where, secrets := key("image_pull_secrets"), in.ImagePullSecrets
	if opts.ImagePullSecrets != nil {
		where, secrets = "--image-pull-secret", opts.ImagePullSecrets
	}
	for _, v := range secrets {
		if err := dnsSubdomain(v); err != nil {
			return fmt.Errorf("%s %q: %v", where, v, err)
		}
	}
	k.ImagePullSecrets = slices.Clone(secrets)

	where, sel := key("node_selector"), in.NodeSelector
	if opts.NodeSelector != nil {
		where, sel = "--node-selector", opts.NodeSelector
	}
	for name, v := range sel {
		if errs := validation.IsQualifiedName(name); len(errs) > 0 {
			return fmt.Errorf("%s: label %q: %s", where, name, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return fmt.Errorf("%s: %s=%q: %s", where, name, v, strings.Join(errs, "; "))
		}
	}
	k.NodeSelector = maps.Clone(sel)

	where, tols := key("tolerations"), in.Tolerations
	if opts.Tolerations != nil {
		where, tols = "--toleration", nil
		for _, f := range opts.Tolerations {
			t, err := ParseToleration(f)
			if err != nil {
				return fmt.Errorf("--toleration %q: %w", f, err)
			}
			tols = append(tols, t)
		}
	}
	for i, t := range tols {
		if err := checkToleration(t); err != nil {
			return fmt.Errorf("%s[%d]: %w", where, i, err)
		}
	}
	k.Tolerations = slices.Clone(tols)

	memAgg, memExec := s.defaultMemory()
	var err error
	if k.Aggregator, err = resources(key, "aggregator", in.Aggregator, DefaultAggregatorCPU, memAgg); err != nil {
		return err
	}
	k.Executor, err = resources(key, "executor", in.Executor, DefaultExecutorCPU, memExec)
	return err
}

// resources reads one component's keys, with defaults.
func resources(key func(string) string, comp string, in config.Resources, cpu string, mem int64) (Resources, error) {
	var r Resources
	parse := func(name, v string, dflt resource.Quantity, to *resource.Quantity) error {
		if v == "" {
			*to = dflt
			return nil
		}
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return fmt.Errorf("%s %q: want a Kubernetes quantity (e.g. 500m or 2 CPUs, 512Mi or 4Gi of memory)", key(comp+"_"+name), v)
		}
		if q.Sign() <= 0 {
			return fmt.Errorf("%s %q: must be positive", key(comp+"_"+name), v)
		}
		*to = q
		return nil
	}
	if err := parse("cpu", in.CPU, resource.MustParse(cpu), &r.CPU); err != nil {
		return r, err
	}
	if err := parse("memory", in.Memory, *resource.NewQuantity(mem, resource.BinarySI), &r.Memory); err != nil {
		return r, err
	}
	limit := r.Memory.DeepCopy()
	limit.Mul(memoryLimitFactor)
	if err := parse("memory_limit", in.MemoryLimit, limit, &r.MemoryLimit); err != nil {
		return r, err
	}
	if r.MemoryLimit.Cmp(r.Memory) < 0 {
		return r, fmt.Errorf("%s %s is below k8s.%s_memory %s; a limit must be at least the request", key(comp+"_memory_limit"), r.MemoryLimit.String(), comp, r.Memory.String())
	}
	return r, nil
}

// defaultMemory is the memory requests sized from the model: the input
// shape and class count of the job's data set (runtime/data's table;
// FEMNIST's 28x28 grey for grey_input, whose size only the images know),
// and the larger of the training and test batches. A model that cannot be
// measured (the runtime will say why) gets the base size.
func (s *Spec) defaultMemory() (agg, exec int64) {
	c := &s.Job.Conf
	spec := model.Spec{Name: c.Model, Channels: 1, Height: 28, Width: 28, Classes: 62}
	if !c.GreyInput {
		if p, err := data.PipelineFor(c.DataSet); err == nil {
			spec.Channels, spec.Height, spec.Width = p.Channels, p.Height, p.Width
			if p.Classes > 0 {
				spec.Classes = p.Classes
			}
		}
	}
	if c.NumClasses > 0 {
		spec.Classes = c.NumClasses
	}
	f, err := model.Measure(spec)
	if err != nil {
		f = model.Footprint{}
	}
	batch := max(c.BatchSize, c.TestBsz)
	return roundMiB(model.ProcessMemory(f, false, batch)), roundMiB(model.ProcessMemory(f, true, batch))
}

// roundMiB rounds up to 64 MiB, so requests read as whole Mi values.
func roundMiB(n int64) int64 {
	const step = 64 << 20
	return (n + step - 1) / step * step
}

func dnsSubdomain(v string) error {
	if errs := validation.IsDNS1123Subdomain(v); len(errs) > 0 {
		return fmt.Errorf("not a Kubernetes object name: %s", strings.Join(errs, "; "))
	}
	return nil
}

func checkToleration(t config.Toleration) error {
	if t.Key != "" {
		if errs := validation.IsQualifiedName(t.Key); len(errs) > 0 {
			return fmt.Errorf("key %q: %s", t.Key, strings.Join(errs, "; "))
		}
	}
	if t.Operator != "" && !slices.Contains(tolerationOperators, t.Operator) {
		return fmt.Errorf("operator %q: want %s", t.Operator, strings.Join(tolerationOperators, " or "))
	}
	if t.Operator == "Exists" && t.Value != "" {
		return fmt.Errorf("operator Exists takes no value (got %q)", t.Value)
	}
	if t.Key == "" && t.Operator != "Exists" {
		return fmt.Errorf("an empty key needs operator Exists (it then tolerates every taint)")
	}
	if errs := validation.IsValidLabelValue(t.Value); len(errs) > 0 {
		return fmt.Errorf("value %q: %s", t.Value, strings.Join(errs, "; "))
	}
	if t.Effect != "" && !slices.Contains(tolerationEffects, t.Effect) {
		return fmt.Errorf("effect %q: want %s, or none for all", t.Effect, strings.Join(tolerationEffects, ", "))
	}
	if t.Seconds != nil && t.Effect != "NoExecute" {
		return fmt.Errorf("tolerationSeconds applies to effect NoExecute only")
	}
	return nil
}

// ParseToleration reads --toleration: a taint as kubectl taint writes it,
// key[=value][:effect]; with a value the operator is Equal, without one
// Exists; no effect tolerates every effect.
func ParseToleration(s string) (config.Toleration, error) {
	var t config.Toleration
	rest, effect, hasEffect := strings.Cut(s, ":")
	if hasEffect {
		if effect == "" {
			return t, fmt.Errorf("empty effect after ':'; want key[=value][:effect]")
		}
		t.Effect = effect
	}
	var hasValue bool
	t.Key, t.Value, hasValue = strings.Cut(rest, "=")
	if t.Key == "" {
		return t, fmt.Errorf("no key; want key[=value][:effect], e.g. nvidia.com/gpu:NoSchedule")
	}
	t.Operator = "Exists"
	if hasValue {
		t.Operator = "Equal"
	}
	return t, checkToleration(t)
}
