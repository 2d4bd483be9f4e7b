// Package config reads and validates FedScale job files (benchmark/configs/*/conf*.yml):
// the YAML format FedScale users already have, typed into a Job and its
// job_conf section Conf, with the original's defaults. Everything that
// decides whether a job file is acceptable belongs here — coercion of the
// values users write (Python-style booleans, 1e15 as an integer, $VAR and ~
// in paths), unknown-key detection with suggestions, cross-field checks and
// command-line overrides — so the aggregator, executors and drivers can
// trust a Job once Parse or Validate has accepted it. It also owns the
// facts about keys that others read: experiment_mode as a Mode,
// use_container's values (the launcher's backend names are made of them),
// the ports rule (CheckPorts), the launcher's executor_restarts and its
// bound (CheckExecutorRestarts), and which keys a checkpoint must agree with
// to be resumed (WriteFingerprint). The aggregation policies' names and
// defaults are runtime/aggregate's. Launching, logging and training live
// elsewhere.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/fedscale/fedscale-go/runtime/inputfile"
)

// The values of use_container, FedScale's key for where containers run
// (absent: not in containers). The launcher's backends are these and its
// own local processes.
const (
	ContainerDocker = "docker"
	ContainerK8s    = "k8s"
)

// Job is one parsed job file.
type Job struct {
	Path             string // file it was read from ("" when parsed from bytes with no name)
	UseContainer     string // "", ContainerDocker or ContainerK8s
	DataPath         string // env- and ~-expanded
	NumAggregators   int    // default 1; only 1 is valid
	NumExecutors     int    // top-level num_executors; 0 when absent
	Ports            []int  // docker: aggregator's host port, then one per executor
	ContainerNetwork string
	PsIP             string
	WorkerIPs        []WorkerHost
	// DockerEngines (docker_engines, this runtime's own key) maps a host of
	// ps_ip or worker_ips to the Docker engine its containers run on: an
	// engine address (unix://, tcp://, ssh://) or a Docker context name.
	// The launcher's Docker backend owns what the values mean.
	DockerEngines   map[string]string
	ExpPath         string // env- and ~-expanded
	ExecutorEntry   string
	AggregatorEntry string
	Auth            Auth
	SetupCommands   []string // null → empty
	AggregatorImage string
	ExecutorImage   string
	// ExecutorRestarts is the launcher's executor_restarts: how often a
	// failed executor is started again; nil when absent (each backend's
	// default, launcher/job's to decide).
	ExecutorRestarts *int
	K8s              K8s // the k8s section: the Kubernetes backend's keys of our own
	Conf             Conf
	// Warnings holds one line per accepted-but-ignored setting, e.g.
	// `conf.yml:14: job_conf.num_loaders is known to FedScale but not used by this runtime; ignored`.
	Warnings []string
}

// Auth is the ssh login for non-container jobs.
type Auth struct {
	SSHUser       string
	SSHPrivateKey string // env- and ~-expanded
}

// WorkerHost is one worker_ips or executor_configs entry: "10.0.0.1:[2,1]"
// means 2 executor processes on GPU 0 and 1 on GPU 1 of host 10.0.0.1.
type WorkerHost struct {
	Host  string
	Procs []int
}

// maxProcs bounds one GPU's process count so sums cannot overflow.
const maxProcs = 1 << 16

// Processes is the number of executor processes on the host.
func (w WorkerHost) Processes() int {
	n := 0
	for _, p := range w.Procs {
		n += p
	}
	return n
}

// String renders the entry in the job-file form host:[n0,n1,...].
func (w WorkerHost) String() string {
	parts := make([]string, len(w.Procs))
	for i, p := range w.Procs {
		parts[i] = strconv.Itoa(p)
	}
	return w.Host + ":[" + strings.Join(parts, ",") + "]"
}

func (w WorkerHost) check() error {
	if w.Host == "" || strings.IndexFunc(w.Host, unicode.IsSpace) >= 0 {
		return fmt.Errorf("worker %q: host must be non-empty without spaces", clip(w.String()))
	}
	if len(w.Procs) == 0 {
		return fmt.Errorf("worker %q: needs at least one process count per GPU", clip(w.String()))
	}
	for _, p := range w.Procs {
		if p < 0 || p > maxProcs {
			return fmt.Errorf("worker %q: process counts must be in 0..%d", clip(w.String()), maxProcs)
		}
	}
	return nil
}

// ParseWorkerHost parses "host:[n0,n1,...]".
func ParseWorkerHost(s string) (WorkerHost, error) {
	s = strings.TrimSpace(s)
	bad := fmt.Errorf("worker %q: expected host:[n,...] (e.g. 10.0.0.1:[2,1])", clip(s))
	i := strings.LastIndex(s, ":[")
	if i <= 0 || !strings.HasSuffix(s, "]") {
		return WorkerHost{}, bad
	}
	w := WorkerHost{Host: s[:i]}
	for _, part := range strings.Split(s[i+2:len(s)-1], ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil {
			return WorkerHost{}, bad
		}
		w.Procs = append(w.Procs, n)
	}
	if err := w.check(); err != nil {
		return WorkerHost{}, err
	}
	return w, nil
}

// ParseExecutorConfigs parses the original's executor_configs flag:
// WorkerHost entries joined by "=".
func ParseExecutorConfigs(s string) ([]WorkerHost, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("empty executor list")
	}
	var hosts []WorkerHost
	for _, part := range strings.Split(s, "=") {
		w, err := ParseWorkerHost(part)
		if err != nil {
			return nil, err
		}
		hosts = append(hosts, w)
	}
	return hosts, nil
}

func totalProcesses(hosts []WorkerHost) int {
	n := 0
	for _, w := range hosts {
		n += w.Processes()
	}
	return n
}

// Slot is where one executor runs: its worker_ips host and the GPU index
// on that host.
type Slot struct {
	Host string
	GPU  int
}

// Slots expands worker_ips-style entries into one Slot per executor in
// rank order, as FedScale's launcher hands out ranks and cuda_device: host
// by host, and on each host GPU by GPU ("host:[2,1]": two executors on
// GPU 0, one on GPU 1).
func Slots(hosts []WorkerHost) []Slot {
	var out []Slot
	for _, w := range hosts {
		for gpu, n := range w.Procs {
			for range n {
				out = append(out, Slot{w.Host, gpu})
			}
		}
	}
	return out
}

// GPUOf is the GPU index of executor rank (1-based) on its host by Slots
// of worker_ips (else job_conf executor_configs); -1 when neither lists
// the executors or rank is not among them.
func (j *Job) GPUOf(rank int) int {
	hosts := j.WorkerIPs
	if len(hosts) == 0 && j.Conf.IsSet("executor_configs") {
		hosts, _ = ParseExecutorConfigs(j.Conf.ExecutorConfigs)
	}
	if rank < 1 || totalProcesses(hosts) < rank {
		return -1
	}
	return Slots(hosts)[rank-1].GPU
}

// GPUPeers is how many executors (rank included) Slots puts on rank's
// GPU of its host, for a fair share of that GPU's memory; 1 when the job
// does not list its executors' GPUs.
func (j *Job) GPUPeers(rank int) int {
	hosts := j.WorkerIPs
	if len(hosts) == 0 && j.Conf.IsSet("executor_configs") {
		hosts, _ = ParseExecutorConfigs(j.Conf.ExecutorConfigs)
	}
	if rank < 1 || totalProcesses(hosts) < rank {
		return 1
	}
	slots := Slots(hosts)
	n := 0
	for _, s := range slots {
		if s == slots[rank-1] {
			n++
		}
	}
	return n
}

// Executors resolves the executor count: job_conf num_executors if set,
// else top-level num_executors, else the processes listed in worker_ips,
// else job_conf executor_configs, else 1. Every source present must agree;
// a disagreement is an error naming both.
func (j *Job) Executors() (int, error) {
	n, _, err := j.executors()
	return n, err
}

// executors is Executors that also names the key at fault, so Parse can
// point at its line.
func (j *Job) executors() (int, string, error) {
	type source struct {
		name string
		n    int
	}
	var srcs []source
	if j.Conf.IsSet("num_executors") {
		srcs = append(srcs, source{"job_conf.num_executors", j.Conf.NumExecutors})
	}
	if j.NumExecutors != 0 {
		srcs = append(srcs, source{"num_executors", j.NumExecutors})
	}
	if len(j.WorkerIPs) > 0 {
		srcs = append(srcs, source{"worker_ips", totalProcesses(j.WorkerIPs)})
	}
	if j.Conf.IsSet("executor_configs") {
		hosts, err := ParseExecutorConfigs(j.Conf.ExecutorConfigs)
		if err != nil {
			return 0, "job_conf.executor_configs", fmt.Errorf("executor count: job_conf.executor_configs: %w", err)
		}
		srcs = append(srcs, source{"job_conf.executor_configs", totalProcesses(hosts)})
	}
	if len(srcs) == 0 {
		return 1, "", nil
	}
	first := srcs[0]
	if first.n < 1 {
		return 0, first.name, fmt.Errorf("executor count: %s gives %d executors; need at least 1", first.name, first.n)
	}
	if first.n > MaxExecutors {
		return 0, first.name, fmt.Errorf("executor count: %s gives %d executors; at most %d are supported", first.name, first.n, MaxExecutors)
	}
	for _, s := range srcs[1:] {
		if s.n != first.n {
			return 0, s.name, fmt.Errorf("executor count: %s gives %d but %s gives %d; make them agree or drop one", first.name, first.n, s.name, s.n)
		}
	}
	return first.n, "", nil
}

// Validate checks the whole job: Conf.Validate plus the top-level settings
// and the executor count. Parse runs it; run it again after Conf.Set.
func (j *Job) Validate() error {
	return joinIssues(j.issues(), nil)
}

func (j *Job) issues() []issue {
	out := j.Conf.issues()
	add := func(key, format string, args ...any) {
		out = append(out, issue{key, fmt.Sprintf(format, args...)})
	}
	switch j.UseContainer {
	case "", ContainerDocker, ContainerK8s:
	default:
		add("use_container", "use_container must be %s, %s or absent, got %q", ContainerDocker, ContainerK8s, clip(j.UseContainer))
	}
	if j.NumAggregators != 1 {
		add("num_aggregators", "num_aggregators: only 1 aggregator is supported, got %d", j.NumAggregators)
	}
	if j.NumExecutors < 0 {
		add("num_executors", "num_executors must be positive, got %d", j.NumExecutors)
	}
	for _, w := range j.WorkerIPs {
		if err := w.check(); err != nil {
			add("worker_ips", "worker_ips: %v", err)
		}
	}
	for _, host := range sortedKeys(j.DockerEngines) {
		engine := j.DockerEngines[host]
		switch {
		case !j.hasHost(host):
			add("docker_engines", "docker_engines: %q is neither ps_ip nor a worker_ips host", clip(host))
		case engine == "" || strings.HasPrefix(engine, "-") || strings.IndexFunc(engine, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
			add("docker_engines", "docker_engines.%s must be a Docker engine address (unix://, tcp://, ssh://) or context name without spaces that does not start with '-', got %q", clip(host), clip(engine))
		}
	}
	for _, p := range j.Ports {
		if p < 1 || p > MaxPort {
			add("ports", "ports: %d is not in 1..%d", p, MaxPort)
		}
	}
	if j.ExecutorRestarts != nil {
		if err := CheckExecutorRestarts(*j.ExecutorRestarts); err != nil {
			add("executor_restarts", "executor_restarts %v", err)
		}
	}
	// These values end up as arguments of docker/kubectl commands; a leading
	// '-' would be read as an option.
	for _, s := range []struct{ key, v string }{
		{"aggregator_image", j.AggregatorImage},
		{"executor_image", j.ExecutorImage},
		{"container_network", j.ContainerNetwork},
	} {
		if strings.HasPrefix(s.v, "-") || strings.IndexFunc(s.v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
			add(s.key, "%s must be a name without spaces that does not start with '-', got %q", s.key, clip(s.v))
		}
	}
	// The count is only meaningful once its sources are individually valid;
	// otherwise the same fault would be reported twice.
	for _, is := range out {
		switch is.key {
		case "job_conf.num_executors", "job_conf.executor_configs", "num_executors", "worker_ips":
			return out
		}
	}
	n, key, err := j.executors()
	if err != nil {
		add(key, "%v", err)
	} else if j.UseContainer == ContainerDocker {
		if err := CheckPorts(j.Ports, n); err != nil {
			add("ports", "%v", err)
		}
	}
	return out
}

// hasHost reports whether host is ps_ip or a worker_ips host.
func (j *Job) hasHost(host string) bool {
	if host == j.PsIP {
		return true
	}
	for _, w := range j.WorkerIPs {
		if w.Host == host {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// CheckPorts is the rule for the ports key, which only containers on Docker
// use: none, or the aggregator's then one per executor.
func CheckPorts(ports []int, executors int) error {
	if len(ports) > 0 && len(ports) != executors+1 {
		return fmt.Errorf("ports lists %d ports but use_container docker with %d executors needs %d (the aggregator's first, then one per executor)", len(ports), executors, executors+1)
	}
	return nil
}

// MaxExecutorRestarts bounds executor_restarts: a few restarts ride out a
// crash or an OOM kill; an executor that keeps failing should stop and be
// looked at, not cycle for hours.
const MaxExecutorRestarts = 100

// CheckExecutorRestarts is the rule for executor_restarts (and the
// launcher's --executor-restarts, which overrides it).
func CheckExecutorRestarts(n int) error {
	if n < 0 || n > MaxExecutorRestarts {
		return fmt.Errorf("must be in 0..%d, got %d", MaxExecutorRestarts, n)
	}
	return nil
}

// MaxJobFileBytes bounds a job file. FedScale's are a few KiB; the bound
// keeps a path such as /dev/zero, or a mistaken data file, from being read
// without end.
const MaxJobFileBytes = 1 << 20

// Load reads and parses the job file at path, which must be a regular file
// of at most MaxJobFileBytes.
func Load(path string) (*Job, error) {
	data, err := inputfile.Read(path, MaxJobFileBytes)
	if err != nil {
		return nil, fmt.Errorf("reading job file: %w", err)
	}
	return Parse(data, path)
}

// topLevelKeys are the keys a job file may have outside job_conf.
var topLevelKeys = []string{
	"aggregator_entry", "aggregator_image", "auth", "container_network",
	"data_path", "docker_engines", "exp_path", "executor_entry", "executor_image", "executor_restarts", "job_conf", "k8s",
	"num_aggregators", "num_executors", "ports", "ps_ip", "setup_commands",
	"use_container", "worker_ips",
}

var authKeys = []string{"ssh_private_key", "ssh_user"}

// parser carries what error and warning lines need: the file name and the
// line each key was given on.
type parser struct {
	name     string
	errs     []error
	warnings []string
	lines    map[string]int // "ports", "job_conf.rounds" → line
}

func (p *parser) loc(line int) string {
	name := p.name
	if name == "" {
		name = "<input>"
	}
	if line > 0 {
		return fmt.Sprintf("%s:%d: ", name, line)
	}
	return name + ": "
}

func (p *parser) errorf(line int, format string, args ...any) {
	p.errs = append(p.errs, errors.New(p.loc(line)+fmt.Sprintf(format, args...)))
}

func (p *parser) warnf(line int, format string, args ...any) {
	p.warnings = append(p.warnings, p.loc(line)+fmt.Sprintf(format, args...))
}

// Parse parses and validates a job file; name is the file name used in
// messages and stored in Job.Path. All problems found are reported
// together, one per line, each with file:line where known.
func Parse(data []byte, name string) (*Job, error) {
	p := &parser{name: name, lines: make(map[string]int)}
	doc, err := decodeYAML(data)
	if err != nil {
		return nil, fmt.Errorf("%sinvalid YAML: %w", p.loc(0), err)
	}
	if doc == nil || len(doc.Content) == 0 || isNull(resolve(doc.Content[0])) {
		return nil, fmt.Errorf("%sjob file is empty", p.loc(0))
	}
	root := resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%sa job file must be a map of keys (use_container, job_conf, ...), got %s", p.loc(root.Line), describe(root))
	}

	j := &Job{Path: name, NumAggregators: 1, Conf: Default()}
	p.topLevel(j, root)
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	// FedScale's own configs set filter_less 0 with batches of 32; the
	// executor trains a smaller client on batches of all its samples,
	// where the original loops forever, so this is worth a line, not an error.
	if j.Conf.FilterLess < j.Conf.BatchSize {
		p.warnf(p.lines["job_conf.filter_less"], "job_conf.filter_less (%d) is below job_conf.batch_size (%d): clients with fewer samples than a batch train on batches of all their samples", j.Conf.FilterLess, j.Conf.BatchSize)
	}
	if j.Conf.SampleMode == "oort" {
		p.warnf(p.lines["job_conf.sample_mode"], "job_conf.sample_mode oort is not implemented by this runtime; clients are sampled at random")
	}
	if err := joinIssues(j.issues(), func(key string) string { return p.loc(p.lines[key]) }); err != nil {
		return nil, err
	}
	j.Warnings = p.warnings
	return j, nil
}

// decodeYAML returns the single document in data, nil for none. The parser
// is third-party code fed untrusted input; a panic in it becomes an error.
func decodeYAML(data []byte) (doc *yaml.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			doc, err = nil, fmt.Errorf("YAML parser failed: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var n yaml.Node
	if err := dec.Decode(&n); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, errors.New("more than one YAML document (---); a job file holds one")
	} else if !errors.Is(err, io.EOF) {
		return nil, err
	}
	return &n, nil
}

// mapKey returns a mapping key's text, reporting non-scalar keys.
func (p *parser) mapKey(k *yaml.Node, section string) (string, bool) {
	if k.Kind != yaml.ScalarNode {
		p.errorf(k.Line, "%s keys must be names, got %s", section, describe(k))
		return "", false
	}
	return k.Value, true
}

func (p *parser) topLevel(j *Job, m *yaml.Node) {
	seen := make(map[string]int)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := resolve(m.Content[i]), resolve(m.Content[i+1])
		key, ok := p.mapKey(k, "top-level")
		if !ok {
			continue
		}
		if prev, dup := seen[key]; dup {
			p.errorf(k.Line, "duplicate top-level key %q (first at line %d)", clip(key), prev)
			continue
		}
		seen[key] = k.Line
		p.lines[key] = k.Line
		// fail reports a coercion error at the value's line.
		fail := func(err error) {
			if err != nil {
				p.errorf(v.Line, "%s: %v", key, err)
			}
		}
		var err error
		switch key {
		case "use_container":
			j.UseContainer, err = toString(v)
		case "data_path":
			j.DataPath, err = toPath(v)
		case "num_aggregators":
			j.NumAggregators, err = toInt(v)
		case "num_executors":
			j.NumExecutors, err = toInt(v)
			if err == nil && j.NumExecutors < 1 {
				err = fmt.Errorf("must be positive, got %d", j.NumExecutors)
			}
		case "ports":
			j.Ports = p.intList(v, key)
		case "container_network":
			j.ContainerNetwork, err = toString(v)
		case "ps_ip":
			j.PsIP, err = toString(v)
		case "worker_ips":
			j.WorkerIPs = p.workers(v)
		case "docker_engines":
			j.DockerEngines = p.engines(v)
		case "exp_path":
			j.ExpPath, err = toPath(v)
		case "executor_entry":
			j.ExecutorEntry, err = toString(v)
		case "aggregator_entry":
			j.AggregatorEntry, err = toString(v)
		case "aggregator_image":
			j.AggregatorImage, err = toString(v)
		case "executor_image":
			j.ExecutorImage, err = toString(v)
		case "executor_restarts":
			var n int
			if n, err = toInt(v); err == nil {
				j.ExecutorRestarts = &n
			}
		case "auth":
			p.auth(j, v)
		case "setup_commands":
			j.SetupCommands = p.stringList(v, key)
		case "job_conf":
			p.jobConf(j, v)
		case "k8s":
			p.k8s(j, v)
		default:
			if fieldByKey[key] != nil || originalKeys[key] {
				p.errorf(k.Line, "%q is a job_conf key; move it under job_conf", clip(key))
			} else {
				p.errs = append(p.errs, fmt.Errorf("%s%w", p.loc(k.Line), unknownKeyError("top-level", key, topLevelKeys)))
			}
		}
		fail(err)
	}
}

// list returns the items of a sequence; null is an empty list and a single
// scalar a list of one, which is what users mean by either.
func (p *parser) list(v *yaml.Node, key string) []*yaml.Node {
	switch {
	case v.Kind == yaml.SequenceNode:
		items := make([]*yaml.Node, len(v.Content))
		for i, it := range v.Content {
			items[i] = resolve(it)
		}
		return items
	case isNull(v):
		return nil
	case v.Kind == yaml.ScalarNode:
		return []*yaml.Node{v}
	}
	p.errorf(v.Line, "%s: expected a list, got %s", key, describe(v))
	return nil
}

func (p *parser) intList(v *yaml.Node, key string) []int {
	var out []int
	for _, it := range p.list(v, key) {
		n, err := toInt(it)
		if err != nil {
			p.errorf(it.Line, "%s: %v", key, err)
			continue
		}
		out = append(out, n)
	}
	return out
}

func (p *parser) stringList(v *yaml.Node, key string) []string {
	out := []string{}
	for _, it := range p.list(v, key) {
		s, err := toString(it)
		if err != nil {
			p.errorf(it.Line, "%s: %v", key, err)
			continue
		}
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (p *parser) workers(v *yaml.Node) []WorkerHost {
	var out []WorkerHost
	for _, it := range p.list(v, "worker_ips") {
		s, err := toString(it)
		if err != nil {
			p.errorf(it.Line, "worker_ips: %v", err)
			continue
		}
		w, err := ParseWorkerHost(s)
		if err != nil {
			p.errorf(it.Line, "worker_ips: %v", err)
			continue
		}
		out = append(out, w)
	}
	return out
}

// MaxEngines bounds docker_engines and the engines a job's containers
// name (launcher/backend/docker): one engine per host of the job, and a
// job has at most MaxExecutors+1 hosts.
const MaxEngines = MaxExecutors + 1

// engines parses docker_engines, a map of host to engine.
func (p *parser) engines(v *yaml.Node) map[string]string {
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		p.errorf(v.Line, "docker_engines: expected a map of host to Docker engine (e.g. 10.0.0.2: ssh://fed@10.0.0.2), got %s", describe(v))
		return nil
	}
	out := map[string]string{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := resolve(v.Content[i]), resolve(v.Content[i+1])
		host, ok := p.mapKey(k, "docker_engines")
		if !ok {
			continue
		}
		if _, dup := out[host]; dup {
			p.errorf(k.Line, "duplicate docker_engines host %q", clip(host))
			continue
		}
		if len(out) == MaxEngines {
			p.errorf(k.Line, "docker_engines: more than %d hosts", MaxEngines)
			return out
		}
		engine, err := toString(val)
		if err != nil {
			p.errorf(val.Line, "docker_engines.%s: %v", clip(host), err)
			continue
		}
		out[host] = engine
	}
	return out
}

func (p *parser) auth(j *Job, v *yaml.Node) {
	if isNull(v) {
		return
	}
	if v.Kind != yaml.MappingNode {
		p.errorf(v.Line, "auth: expected a map with ssh_user and ssh_private_key, got %s", describe(v))
		return
	}
	seen := make(map[string]bool)
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := resolve(v.Content[i]), resolve(v.Content[i+1])
		key, ok := p.mapKey(k, "auth")
		if !ok {
			continue
		}
		if seen[key] {
			p.errorf(k.Line, "duplicate auth key %q", clip(key))
			continue
		}
		seen[key] = true
		var err error
		switch key {
		case "ssh_user":
			j.Auth.SSHUser, err = toString(val)
		case "ssh_private_key":
			j.Auth.SSHPrivateKey, err = toPath(val)
		default:
			p.errs = append(p.errs, fmt.Errorf("%s%w", p.loc(k.Line), unknownKeyError("auth", key, authKeys)))
		}
		if err != nil {
			p.errorf(val.Line, "auth.%s: %v", key, err)
		}
	}
}

// jobConf merges job_conf into j.Conf: a list of maps applied in order
// (later wins), or a single map.
func (p *parser) jobConf(j *Job, v *yaml.Node) {
	switch {
	case v.Kind == yaml.SequenceNode:
		for _, it := range v.Content {
			it = resolve(it)
			if it.Kind != yaml.MappingNode {
				p.errorf(it.Line, "job_conf item must be a map (- key: value), got %s", describe(it))
				continue
			}
			p.confMap(j, it)
		}
	case v.Kind == yaml.MappingNode:
		p.confMap(j, v)
	case isNull(v):
	default:
		p.errorf(v.Line, "job_conf must be a list of single-key maps (- key: value) or a map, got %s", describe(v))
	}
}

func (p *parser) confMap(j *Job, m *yaml.Node) {
	seen := make(map[string]bool)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := resolve(m.Content[i]), resolve(m.Content[i+1])
		key, ok := p.mapKey(k, "job_conf")
		if !ok {
			continue
		}
		if seen[key] {
			p.errorf(k.Line, "duplicate job_conf key %q in one map", clip(key))
			continue
		}
		seen[key] = true
		f := fieldByKey[key]
		if f == nil && !originalKeys[key] {
			p.errs = append(p.errs, fmt.Errorf("%s%w", p.loc(k.Line), unknownKeyError("job_conf", key, knownKeys)))
			continue
		}
		if prev, again := p.lines["job_conf."+key]; again {
			p.warnf(k.Line, "job_conf.%s is given again (first at line %d); the later value wins", key, prev)
		}
		p.lines["job_conf."+key] = k.Line
		j.Conf.markSet(key)
		if f == nil || f.ignored {
			p.warnf(k.Line, "job_conf.%s is known to FedScale but not used by this runtime; ignored", key)
			if f == nil {
				continue
			}
		}
		if err := assign(&j.Conf, f, v); err != nil {
			p.errorf(v.Line, "job_conf.%s: %v", key, err)
		}
	}
}
