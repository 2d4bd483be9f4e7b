// Package job turns a FedScale job file into the backend-neutral description
// of what to run: the job's name, its processes (one aggregator, N
// executors) with their images, arguments, health ports and GPUs, and the
// config bytes every process receives at start. Backends (package backend
// and its docker, k8s and local implementations) only translate a Spec into
// their own objects; every decision about the job itself is made here.
package job

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/fedscale/fedscale-go/runtime/config"
	"github.com/fedscale/fedscale-go/runtime/inputfile"
	"github.com/fedscale/fedscale-go/runtime/model"
	"github.com/fedscale/fedscale-go/runtime/mtls"
	"github.com/fedscale/fedscale-go/runtime/variant"
	"github.com/fedscale/fedscale-go/runtime/version"
)

// Where things are inside a container. data_path is mounted where the
// original images had it, so job files that say $FEDSCALE_HOME/benchmark/...
// keep working unchanged.
const (
	ContainerHome       = "/FedScale"
	ContainerDataPath   = "/FedScale/benchmark"
	ContainerConfigDir  = "/etc/fedscale"
	ContainerConfigFile = "job.yml"
	ContainerConfigPath = ContainerConfigDir + "/" + ContainerConfigFile
	// ContainerTLSDir holds a process's TLS files (runtime/mtls.Dir names).
	ContainerTLSDir = "/etc/fedscale-tls" // beside, not inside, the read-only job file mount
)

// Labels (Docker) and labels/annotations (Kubernetes) that carry a job's
// state in the backend itself, so stop/status/logs work from any machine.
const (
	LabelJob       = "fedscale.dev/job"       // the job name
	LabelComponent = "fedscale.dev/component" // aggregator | executor
	LabelRank      = "fedscale.dev/rank"      // 0 aggregator, 1..N executors
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "fedscale-launcher"
	// Kubernetes' recommended labels besides managed-by: the application
	// (AppName), this job as its instance, the component, and the version.
	LabelName         = "app.kubernetes.io/name"
	LabelInstance     = "app.kubernetes.io/instance"
	LabelAppComponent = "app.kubernetes.io/component"
	LabelPartOf       = "app.kubernetes.io/part-of"
	LabelVersion      = "app.kubernetes.io/version"
	AppName           = "fedscale"
	// AnnotationJobFile records the job file's path at submit (informational).
	AnnotationJobFile = "fedscale.dev/job-file"
)

// Image repositories fsbuild pushes; the default tag is this binary's version.
const (
	DefaultAggregatorRepo = "fedscale/fedscale-aggr"
	DefaultExecutorRepo   = "fedscale/fedscale-exec"
)

// Backends: where a job's containers run, as the job file's use_container
// names them, or local processes.
const (
	BackendDocker = config.ContainerDocker
	BackendK8s    = config.ContainerK8s
	BackendLocal  = "local"
)

// Options are the command-line choices that override the job file.
type Options struct {
	Backend         string // "" means from use_container
	Name            string // "" means job_conf job_name
	AggregatorImage string // "" means aggregator_image, else the default
	ExecutorImage   string
	// RemoteEngine says the Docker engine runs on another machine:
	// data_path is then a folder there and is not looked for here.
	RemoteEngine bool
	// ExecutorRestarts (--executor-restarts) overrides executor_restarts;
	// nil leaves it to the job file, else the backend's default.
	ExecutorRestarts *int

	// Kubernetes placement and identity; each, when set (non-nil, non-""),
	// replaces the job file's k8s key of the same meaning.
	NodeSelector     map[string]string
	Tolerations      []string // key[=value][:effect] (ParseToleration)
	ImagePullSecrets []string
	PriorityClass    string
	ServiceAccount   string
}

// DefaultExecutorRestarts is how often a backend starts a failed executor
// again when neither executor_restarts nor --executor-restarts says. On
// Kubernetes, each executor Job's backoff (backoffLimit, per rank)
// has always replaced a lost executor's pod a few times; local processes
// and Docker containers are not restarted unless asked, as before the key.
func DefaultExecutorRestarts(backend string) int {
	if backend == BackendK8s {
		return 3
	}
	return 0
}

// Spec is one job, ready for a backend.
type Spec struct {
	Name    string // DNS-1123 label, at most MaxNameLen
	File    string // the job file's path as given
	Config  []byte // the job file's bytes; every process reads them at start
	Job     *config.Job
	Backend string

	Executors       int
	AggregatorImage string
	ExecutorImage   string
	PsPort          int    // aggregator gRPC port (job_conf ps_port)
	UseCUDA         bool   // job_conf use_cuda
	DataPath        string // host folder (expanded) or "" when the job file has none
	Network         string // container_network ("" lets the backend choose)
	Ports           []int  // docker: host ports (aggregator first), may be empty
	// ExecutorRestarts is how often a failed executor is started again
	// (the aggregator re-issues its tasks meanwhile and takes it back under
	// its rank); the aggregator itself is not restarted this way.
	ExecutorRestarts int
	K8s              K8s // the Kubernetes backend's settings (k8s.go)
}

// IssueTLS makes the job's CA and certificates: the aggregator's for the
// names executors dial (aggHosts), one per executor rank.
func (s *Spec) IssueTLS(aggHosts ...string) (mtls.Bundle, error) {
	b, err := mtls.Issue(s.Name, aggHosts, s.Executors, time.Now())
	if err != nil {
		return nil, fmt.Errorf("job %s: TLS certificates: %w", s.Name, err)
	}
	return b, nil
}

// MaxNameLen leaves room for "-executor-NNNNN" inside a 63-byte DNS label.
const MaxNameLen = 40

// SanitizeName maps a FedScale job_name (which may hold '_' or capitals) onto
// the DNS-1123 label alphabet every backend accepts.
func SanitizeName(s string) string {
	s = strings.ToLower(s)
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			b[i] = '-'
		}
	}
	return strings.Trim(string(b), "-")
}

// ValidateName checks a job name for every backend.
func ValidateName(s string) error {
	if len(s) > MaxNameLen || len(validation.IsDNS1123Label(s)) > 0 {
		return fmt.Errorf("job name %q: want lower-case letters, digits and '-', starting and ending with a letter or digit, at most %d characters", s, MaxNameLen)
	}
	return nil
}

// Load reads and validates the job file at path and applies opts.
func Load(path string, opts Options) (*Spec, error) {
	// Bounded and never blocking: a FIFO or /dev/zero as the job file is
	// an error, not a hang.
	data, err := inputfile.Read(path, config.MaxJobFileBytes)
	if err != nil {
		return nil, fmt.Errorf("reading job file: %w", err)
	}
	return Parse(data, path, opts)
}

// Parse is Load from bytes already read.
func Parse(data []byte, path string, opts Options) (*Spec, error) {
	j, err := config.Parse(data, path)
	if err != nil {
		return nil, err
	}
	s := &Spec{File: path, Config: data, Job: j}
	switch opts.Backend {
	case "":
		s.Backend = j.UseContainer
		if s.Backend == "" {
			s.Backend = BackendLocal
		}
	case BackendDocker, BackendK8s, BackendLocal:
		s.Backend = opts.Backend
	default:
		return nil, fmt.Errorf("--backend %q: want docker, k8s or local", opts.Backend)
	}
	name := opts.Name
	if name == "" {
		name = SanitizeName(j.Conf.JobName)
		if name == "" {
			return nil, fmt.Errorf("%s: job_conf job_name is empty; set it or pass --name", path)
		}
	}
	if err := ValidateName(name); err != nil {
		if opts.Name != "" {
			return nil, fmt.Errorf("--name: %w", err)
		}
		return nil, fmt.Errorf("%s: job_conf job_name gives %w; pass --name", path, err)
	}
	s.Name = name
	if s.Executors, err = j.Executors(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if s.Backend == BackendDocker {
		// Checked here too for --backend docker over another use_container.
		if err := config.CheckPorts(j.Ports, s.Executors); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	s.Ports = j.Ports
	s.PsPort = j.Conf.PsPort
	if err := s.checkHealthPorts(); err != nil {
		return nil, err
	}
	s.UseCUDA = j.Conf.UseCuda
	s.DataPath = j.DataPath
	s.Network = j.ContainerNetwork
	switch {
	case opts.ExecutorRestarts != nil:
		if err := config.CheckExecutorRestarts(*opts.ExecutorRestarts); err != nil {
			return nil, fmt.Errorf("--executor-restarts %w", err)
		}
		s.ExecutorRestarts = *opts.ExecutorRestarts
	case j.ExecutorRestarts != nil:
		s.ExecutorRestarts = *j.ExecutorRestarts // config.Parse checked it
	default:
		s.ExecutorRestarts = DefaultExecutorRestarts(s.Backend)
	}
	if err := model.CheckName(j.Conf.Model); err != nil {
		return nil, fmt.Errorf("%s: job_conf model: %w", path, err)
	}
	if err := s.checkVars(); err != nil {
		return nil, err
	}
	if err := s.checkDataPath(opts.RemoteEngine); err != nil {
		return nil, err
	}
	if err := s.k8sSettings(opts); err != nil {
		return nil, err
	}
	s.AggregatorImage = firstNonEmpty(opts.AggregatorImage, j.AggregatorImage, DefaultAggregatorImage())
	s.ExecutorImage = firstNonEmpty(opts.ExecutorImage, j.ExecutorImage, DefaultExecutorImage(s.UseCUDA))
	return s, nil
}

// DefaultAggregatorImage is the aggregator's image when neither the job
// file nor a flag names one: fsbuild's, tagged with this launcher's version.
func DefaultAggregatorImage() string { return DefaultAggregatorRepo + ":" + version.Version }

// DefaultExecutorImage is the executors' image when neither the job file
// nor a flag names one: fsbuild's CPU image, or with use_cuda its CUDA
// variant (the release's CUDA version, runtime/version.CUDA).
func DefaultExecutorImage(cuda bool) string {
	tag := version.Version
	if cuda {
		tag += variant.CUDA.Suffix(variant.CUDA.Release)
	}
	return DefaultExecutorRepo + ":" + tag
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// HealthPort is the port of the health endpoint of the process of rank
// inside its network namespace: the runtime's default (config.HealthPort,
// ps_port+1+rank), except that on Kubernetes every executor has rank 1's
// (pods do not share a network namespace, and an Indexed Job has one pod
// template).
func (s *Spec) HealthPort(rank int) int {
	if s.Backend == BackendK8s && rank > 1 {
		rank = 1
	}
	return config.HealthPort(s.PsPort, rank)
}

// checkHealthPorts: every process's health port is a port. The rule for
// every backend: they all take their ports from HealthPort.
func (s *Spec) checkHealthPorts() error {
	top := 0
	for _, r := range []int{0, s.Executors} {
		top = max(top, s.HealthPort(r))
	}
	if top > config.MaxPort {
		return fmt.Errorf("%s: job_conf ps_port %d: the health ports of the aggregator and the %d executors (from ps_port+1 on) would reach %d, past %d; choose a lower ps_port",
			s.File, s.PsPort, s.Executors, top, config.MaxPort)
	}
	return nil
}

// Process is one process of the job.
type Process struct {
	Name       string // "aggregator", "executor-1", ...
	Component  string // "aggregator" or "executor"
	Rank       int
	Image      string
	Args       []string // arguments of the image's entrypoint (the runtime binary)
	HealthPort int      // port of /healthz and /readyz inside its network namespace
	Host       string   // worker_ips host this executor belongs to, "" when not given
	GPU        int      // GPU index on Host from worker_ips, -1 when none
}

// Processes lists the aggregator then the executors. configPath is where the
// process reads the job file, psHost how executors reach the aggregator,
// tlsDir where each finds the job's TLS files (runtime/mtls.Dir names).
func (s *Spec) Processes(configPath, psHost, tlsDir string) []Process {
	gpus := config.Slots(s.Job.WorkerIPs)
	common := []string{"--config", configPath, "--job-name", s.Job.Conf.JobName, "--tls-dir", tlsDir}
	out := []Process{{
		Name: "aggregator", Component: "aggregator", Rank: 0, Image: s.AggregatorImage,
		Args:       append(append([]string{}, common...), "--ps-port", strconv.Itoa(s.PsPort)),
		HealthPort: s.HealthPort(0), GPU: -1,
	}}
	for r := 1; r <= s.Executors; r++ {
		p := Process{
			Name: "executor-" + strconv.Itoa(r), Component: "executor", Rank: r, Image: s.ExecutorImage,
			Args: append(append([]string{}, common...), "--rank", strconv.Itoa(r),
				"--ps-ip", psHost, "--ps-port", strconv.Itoa(s.PsPort)),
			HealthPort: s.HealthPort(r), GPU: -1,
		}
		if r-1 < len(gpus) {
			p.Host, p.GPU = gpus[r-1].Host, gpus[r-1].GPU
		}
		out = append(out, p)
	}
	return out
}

// Labels are the labels every object of the job carries: ours, which
// stop, status and logs select by, and Kubernetes' recommended
// app.kubernetes.io set (name, instance, component, part-of, version,
// managed-by) that cluster tools read. A process's objects carry its
// component and rank, and the version of its image; the job's shared
// objects the aggregator image's version.
func (s *Spec) Labels(p *Process) map[string]string {
	l := map[string]string{
		LabelJob: s.Name, LabelManagedBy: ManagedBy,
		LabelName: AppName, LabelInstance: s.Name, LabelPartOf: AppName,
	}
	image := s.AggregatorImage
	if p != nil {
		l[LabelComponent] = p.Component
		l[LabelAppComponent] = p.Component
		l[LabelRank] = strconv.Itoa(p.Rank)
		image = p.Image
	}
	l[LabelVersion] = imageVersion(image)
	return l
}

// imageVersion is an image reference's tag as a label value: the
// reference's digest-free tag when it is one, else this launcher's version
// (the images' default tag), else "unknown" (a version a label cannot hold).
func imageVersion(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	tag := ""
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		tag = ref[i+1:]
	}
	for _, v := range []string{tag, version.Version} {
		if v != "" && len(validation.IsValidLabelValue(v)) == 0 {
			return v
		}
	}
	return "unknown"
}
