package k8s

import (
	"encoding/json"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/fedscale/fedscale-go/launcher/job"
)

// Plan writes the objects Submit would create as YAML documents, without a
// cluster. The output is valid as it stands (kubectl apply / create
// --dry-run=server accept it); only the owner references to the aggregator
// Job are missing, since its uid exists only once it is created.
func (b *Backend) Plan(w io.Writer, s *job.Spec) error {
	objs, err := buildObjects(s, b.ns)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "# Kubernetes objects of job %s in namespace %s (%d executors%s).\n", s.Name, b.ns, s.Executors, map[bool]string{true: ", one GPU each", false: ""}[s.UseCUDA])
	if !b.planNS {
		fmt.Fprintf(w, "# The namespace is not among them (submit creates it when missing; --with-namespace prints it).\n")
	}
	fmt.Fprintf(w, "# At submit, each process's Secret gets the job's CA certificate and that\n")
	fmt.Fprintf(w, "# process's own certificate and key, made then and never printed; the\n")
	fmt.Fprintf(w, "# ConfigMap, the Secrets, the Service and the executors' Jobs also get an\n")
	fmt.Fprintf(w, "# ownerReference to Job %s, so that deleting it removes them too.\n", AggregatorName(s.Name))
	list := objs.list()
	if !b.planNS {
		list = list[1:]
	}
	for _, o := range list {
		data, err := manifest(o)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "---\n%s", data); err != nil {
			return err
		}
	}
	return nil
}

// list is the objects in the order a reader (and kubectl apply) wants
// them, the Namespace first.
func (o *objects) list() []runtime.Object {
	out := []runtime.Object{o.Namespace, o.ConfigMap}
	for _, s := range o.Secrets {
		out = append(out, s)
	}
	out = append(out, o.Service, o.Aggregator)
	for _, j := range o.Executors {
		out = append(out, j)
	}
	return out
}

// manifest is one object as YAML, without its (empty) status.
func manifest(o runtime.Object) ([]byte, error) {
	data, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	delete(m, "status")
	if spec, ok := m["spec"].(map[string]any); ok && len(spec) == 0 {
		delete(m, "spec") // the Namespace's
	}
	dropEmpty(m, "resources")
	return yaml.Marshal(m)
}

// dropEmpty removes the key wherever its value is an empty object (kept by
// encoding/json for struct fields; emptyDir: {} is meaningful and stays).
func dropEmpty(v any, key string) {
	switch v := v.(type) {
	case map[string]any:
		if e, ok := v[key].(map[string]any); ok && len(e) == 0 {
			delete(v, key)
		}
		for _, c := range v {
			dropEmpty(c, key)
		}
	case []any:
		for _, c := range v {
			dropEmpty(c, key)
		}
	}
}
