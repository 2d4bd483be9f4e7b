package config

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/fedscale/fedscale-go/runtime/aggregate"
)

// MaxPort is the highest TCP port: ps_port and the health ports derived
// from it (HealthPort) must not pass it.
const MaxPort = 65535

// HealthPort is the default port of the health endpoint (/healthz, /readyz,
// /metrics) of the process of rank (0: the aggregator) of a job with
// ps_port psPort: ps_port+1+rank, so the processes of a job on one machine
// do not collide.
func HealthPort(psPort, rank int) int { return psPort + 1 + rank }

// Bounds on the sizes executors allocate from (a batch's inputs, a task's
// batches): far above any real job, far below what would exhaust memory
// before an error could be given.
const (
	MaxBatch      = 1 << 16
	MaxLocalSteps = 1 << 20
	// MaxExecutors bounds num_executors: ranks travel as int32 and each
	// executor gets a certificate, a port and a Kubernetes index.
	MaxExecutors = 1 << 16
)

// Mode is experiment_mode: how clients map to executors.
type Mode string

const (
	// Simulation: every executor holds the whole data set and trains
	// whichever clients it is given (FedScale's default).
	Simulation Mode = "simulation"
	// Deployment: each executor is one real client with its own data.
	Deployment Mode = "deployment"
)

// ParseMode checks an experiment_mode value.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Simulation, Deployment:
		return m, nil
	}
	return "", fmt.Errorf("must be %s or %s, got %q", Simulation, Deployment, clip(s))
}

// Conf is the job_conf section: one typed field per FedScale flag this
// runtime uses, named after the flag (json tags give the flag names).
// Use Default for the original's defaults. A Conf copied by value keeps its
// record of set keys; Set never mutates a record shared with a copy.
type Conf struct {
	JobName   string `json:"job_name"`
	LogPath   string `json:"log_path"`   // env- and ~-expanded
	TimeStamp string `json:"time_stamp"` // "" until the runtime stamps the start time

	PsIP     string `json:"ps_ip"`
	PsPort   int    `json:"ps_port"`
	ThisRank int    `json:"this_rank"` // 0 is the aggregator, executors 1..N
	// TLSCA, TLSCert and TLSKey are keys of our own: the PEM files of the
	// job's mutual TLS (runtime/mtls), "" = none. The launcher sets them
	// per process; by hand they come from --tls-ca/--tls-cert/--tls-key.
	TLSCA   string `json:"tls_ca"`
	TLSCert string `json:"tls_cert"`
	TLSKey  string `json:"tls_key"`

	NumExecutors    int     `json:"num_executors"`
	ExecutorConfigs string  `json:"executor_configs"` // "host:[n,...]=host2:[...]"
	ExperimentMode  Mode    `json:"experiment_mode"`
	NumParticipants int     `json:"num_participants"`
	Overcommitment  float64 `json:"overcommitment"`

	DataSet         string `json:"data_set"`
	DataDir         string `json:"data_dir"`
	DataMapFile     string `json:"data_map_file"`     // "" = FedScale's uniform split into num_participants clients (grey_input: the mapping CSV's)
	DeviceConfFile  string `json:"device_conf_file"`  // "" = none
	DeviceAvailFile string `json:"device_avail_file"` // "" = always available
	// GreyInput is our own key: feed a FEMNIST-layout data_dir's images as
	// stored (one grey channel at their own size, pixel/255, no
	// augmentation, the mapping CSV's clients) instead of data_set's
	// FedScale pipeline; data_set is then only a name.
	GreyInput bool `json:"grey_input"`
	// DataFingerprint is our own key: the SHA-256 (hex) digest of the
	// data the job must train on, as the aggregator logs it; "" = not
	// pinned. Simulation only (each device's data is its own).
	DataFingerprint string `json:"data_fingerprint"`

	Model      string `json:"model"`
	NumClasses int    `json:"num_classes"` // 0 = from the data
	// ModelInitFile is a key of our own: a safetensors file (PyTorch
	// state_dict names) the aggregator starts from instead of initialising
	// the model from sample_seed; "" = none.
	ModelInitFile string `json:"model_init_file"`

	SampleMode string `json:"sample_mode"` // random or oort (oort samples at random here)
	SampleSeed int64  `json:"sample_seed"`
	FilterLess int    `json:"filter_less"`
	FilterMore int64  `json:"filter_more"`

	Rounds       int `json:"rounds"`
	EvalInterval int `json:"eval_interval"`
	LocalSteps   int `json:"local_steps"`
	BatchSize    int `json:"batch_size"`
	TestBsz      int `json:"test_bsz"`

	LearningRate    float64 `json:"learning_rate"`
	MinLearningRate float64 `json:"min_learning_rate"`
	DecayFactor     float64 `json:"decay_factor"`
	DecayRound      int     `json:"decay_round"`
	WeightDecay     float64 `json:"weight_decay"`

	GradientPolicy string  `json:"gradient_policy"` // one of aggregate's Policy constants
	YogiEta        float64 `json:"yogi_eta"`
	YogiTau        float64 `json:"yogi_tau"`
	YogiBeta       float64 `json:"yogi_beta"`
	YogiBeta2      float64 `json:"yogi_beta2"`
	ProxyMu        float64 `json:"proxy_mu"`
	QfedQ          float64 `json:"qfed_q"`

	// Our keys for the robust policies and the norm bound (runtime/aggregate).
	TrimFraction        float64 `json:"trim_fraction"`
	NumMaliciousClients int     `json:"num_malicious_clients"`
	NumClientsToKeep    int     `json:"num_clients_to_keep"`
	ClipNorm            float64 `json:"clip_norm"`

	TestRatio float64 `json:"test_ratio"`
	LossDecay float64 `json:"loss_decay"`

	UseCuda        bool `json:"use_cuda"`
	CudaDevice     int  `json:"cuda_device"` // -1 = none chosen
	SaveCheckpoint bool `json:"save_checkpoint"`
	NumLoaders     int  `json:"num_loaders"` // accepted, not used

	set map[string]bool
}

// Default returns the original FedScale defaults (data_dir "~/cifar10/" is
// expanded against $HOME like every path).
func Default() Conf {
	agg := aggregate.DefaultOptions() // the policies' parameters have their owner
	return Conf{
		JobName:         "demo_job",
		LogPath:         "./",
		PsIP:            "127.0.0.1",
		PsPort:          29500,
		ThisRank:        1,
		NumExecutors:    1,
		ExecutorConfigs: "127.0.0.1:[1]",
		ExperimentMode:  Simulation,
		NumParticipants: 4,
		Overcommitment:  1.3,
		DataSet:         "cifar10",
		DataDir:         ExpandPath("~/cifar10/"),
		DeviceConfFile:  "/tmp/client.cfg",
		Model:           "shufflenet_v2_x2_0",
		SampleMode:      "random",
		SampleSeed:      233,
		FilterLess:      32,
		FilterMore:      1e15,
		Rounds:          50,
		EvalInterval:    5,
		LocalSteps:      20,
		BatchSize:       30,
		TestBsz:         128,
		LearningRate:    0.05,
		MinLearningRate: 5e-5,
		DecayFactor:     0.98,
		DecayRound:      10,
		WeightDecay:     5e-4,
		YogiEta:         agg.YogiEta,
		YogiTau:         agg.YogiTau,
		YogiBeta:        agg.YogiBeta,
		YogiBeta2:       agg.YogiBeta2,
		ProxyMu:         agg.ProxMu,
		QfedQ:           agg.QFedQ,
		TestRatio:       1.0,
		LossDecay:       0.2,
		UseCuda:         true,
		CudaDevice:      -1,
		NumLoaders:      2,

		TrimFraction:        agg.TrimFraction,
		NumMaliciousClients: agg.KrumMalicious,
		NumClientsToKeep:    agg.KrumKeep,
		ClipNorm:            agg.ClipNorm,
	}
}

type kind int

const (
	kindInt kind = iota
	kindInt64
	kindFloat
	kindBool
	kindString
	kindPath
	kindOptPath // path where none/None/"" mean unset
	kindOptInt  // int where none/None/""/null mean -1
	kindPolicy
	kindMode
)

// field binds a job_conf key to its Conf field. ignored marks flags we
// accept for compatibility but do not act on (a warning when given).
// resume says whether a checkpoint may be resumed under another value.
type field struct {
	key     string
	kind    kind
	ref     func(c *Conf) any
	ignored bool
	resume  resumeRule
}

// resumeRule is a key's part in the checkpoint's compatibility
// fingerprint. Every key must choose (a test checks): the zero value is
// no decision.
type resumeRule int

const (
	_ resumeRule = iota
	// mustMatch: the value shapes the model's trajectory (the model, the
	// data, who trains and how, how updates are combined), so a
	// checkpoint written under another value is not resumed.
	mustMatch
	// mayChange: where the job runs, logs and how often it evaluates,
	// the round count (a job can be resumed with more rounds), and paths
	// whose contents are fingerprinted on their own (the data, the
	// initial model).
	mayChange
)

var fields = []field{
	{"job_name", kindString, func(c *Conf) any { return &c.JobName }, false, mayChange},
	{"log_path", kindPath, func(c *Conf) any { return &c.LogPath }, false, mayChange},
	{"time_stamp", kindString, func(c *Conf) any { return &c.TimeStamp }, false, mayChange},
	{"ps_ip", kindString, func(c *Conf) any { return &c.PsIP }, false, mayChange},
	{"ps_port", kindInt, func(c *Conf) any { return &c.PsPort }, false, mayChange},
	{"this_rank", kindInt, func(c *Conf) any { return &c.ThisRank }, false, mayChange},
	{"tls_ca", kindOptPath, func(c *Conf) any { return &c.TLSCA }, false, mayChange},
	{"tls_cert", kindOptPath, func(c *Conf) any { return &c.TLSCert }, false, mayChange},
	{"tls_key", kindOptPath, func(c *Conf) any { return &c.TLSKey }, false, mayChange},
	{"num_executors", kindInt, func(c *Conf) any { return &c.NumExecutors }, false, mayChange},
	{"executor_configs", kindString, func(c *Conf) any { return &c.ExecutorConfigs }, false, mayChange},
	{"experiment_mode", kindMode, func(c *Conf) any { return &c.ExperimentMode }, false, mustMatch},
	{"num_participants", kindInt, func(c *Conf) any { return &c.NumParticipants }, false, mustMatch},
	{"overcommitment", kindFloat, func(c *Conf) any { return &c.Overcommitment }, false, mustMatch},
	{"data_set", kindString, func(c *Conf) any { return &c.DataSet }, false, mustMatch},
	{"data_dir", kindPath, func(c *Conf) any { return &c.DataDir }, false, mayChange},
	{"data_map_file", kindOptPath, func(c *Conf) any { return &c.DataMapFile }, false, mayChange},
	{"grey_input", kindBool, func(c *Conf) any { return &c.GreyInput }, false, mustMatch},
	{"data_fingerprint", kindString, func(c *Conf) any { return &c.DataFingerprint }, false, mayChange},
	{"device_conf_file", kindOptPath, func(c *Conf) any { return &c.DeviceConfFile }, false, mayChange},
	{"device_avail_file", kindOptPath, func(c *Conf) any { return &c.DeviceAvailFile }, false, mayChange},
	{"model", kindString, func(c *Conf) any { return &c.Model }, false, mustMatch},
	{"num_classes", kindInt, func(c *Conf) any { return &c.NumClasses }, false, mustMatch},
	{"model_init_file", kindOptPath, func(c *Conf) any { return &c.ModelInitFile }, false, mayChange},
	{"sample_mode", kindString, func(c *Conf) any { return &c.SampleMode }, false, mustMatch},
	{"sample_seed", kindInt64, func(c *Conf) any { return &c.SampleSeed }, false, mustMatch},
	{"filter_less", kindInt, func(c *Conf) any { return &c.FilterLess }, false, mustMatch},
	{"filter_more", kindInt64, func(c *Conf) any { return &c.FilterMore }, false, mustMatch},
	{"rounds", kindInt, func(c *Conf) any { return &c.Rounds }, false, mayChange},
	{"eval_interval", kindInt, func(c *Conf) any { return &c.EvalInterval }, false, mayChange},
	{"local_steps", kindInt, func(c *Conf) any { return &c.LocalSteps }, false, mustMatch},
	{"batch_size", kindInt, func(c *Conf) any { return &c.BatchSize }, false, mustMatch},
	{"test_bsz", kindInt, func(c *Conf) any { return &c.TestBsz }, false, mayChange},
	{"learning_rate", kindFloat, func(c *Conf) any { return &c.LearningRate }, false, mustMatch},
	{"min_learning_rate", kindFloat, func(c *Conf) any { return &c.MinLearningRate }, false, mustMatch},
	{"decay_factor", kindFloat, func(c *Conf) any { return &c.DecayFactor }, false, mustMatch},
	{"decay_round", kindInt, func(c *Conf) any { return &c.DecayRound }, false, mustMatch},
	{"weight_decay", kindFloat, func(c *Conf) any { return &c.WeightDecay }, false, mustMatch},
	{"gradient_policy", kindPolicy, func(c *Conf) any { return &c.GradientPolicy }, false, mustMatch},
	{"yogi_eta", kindFloat, func(c *Conf) any { return &c.YogiEta }, false, mustMatch},
	{"yogi_tau", kindFloat, func(c *Conf) any { return &c.YogiTau }, false, mustMatch},
	{"yogi_beta", kindFloat, func(c *Conf) any { return &c.YogiBeta }, false, mustMatch},
	{"yogi_beta2", kindFloat, func(c *Conf) any { return &c.YogiBeta2 }, false, mustMatch},
	{"proxy_mu", kindFloat, func(c *Conf) any { return &c.ProxyMu }, false, mustMatch},
	{"qfed_q", kindFloat, func(c *Conf) any { return &c.QfedQ }, false, mustMatch},
	{"trim_fraction", kindFloat, func(c *Conf) any { return &c.TrimFraction }, false, mustMatch},
	{"num_malicious_clients", kindInt, func(c *Conf) any { return &c.NumMaliciousClients }, false, mustMatch},
	{"num_clients_to_keep", kindInt, func(c *Conf) any { return &c.NumClientsToKeep }, false, mustMatch},
	{"clip_norm", kindFloat, func(c *Conf) any { return &c.ClipNorm }, false, mustMatch},
	{"test_ratio", kindFloat, func(c *Conf) any { return &c.TestRatio }, false, mayChange},
	{"loss_decay", kindFloat, func(c *Conf) any { return &c.LossDecay }, false, mustMatch},
	{"use_cuda", kindBool, func(c *Conf) any { return &c.UseCuda }, false, mayChange},
	{"cuda_device", kindOptInt, func(c *Conf) any { return &c.CudaDevice }, false, mayChange},
	{"save_checkpoint", kindBool, func(c *Conf) any { return &c.SaveCheckpoint }, false, mayChange},
	{"num_loaders", kindInt, func(c *Conf) any { return &c.NumLoaders }, true, mayChange},
}

// WriteFingerprint writes "key=value" for each key whose value shapes the
// model's trajectory, in table order: what a checkpoint must agree with to
// be resumed.
func (c *Conf) WriteFingerprint(w io.Writer) {
	for i := range fields {
		if f := &fields[i]; f.resume == mustMatch {
			fmt.Fprintf(w, "%s=%v\n", f.key, reflect.ValueOf(f.ref(c)).Elem().Interface())
		}
	}
}

var fieldByKey = func() map[string]*field {
	m := make(map[string]*field, len(fields))
	for i := range fields {
		m[fields[i].key] = &fields[i]
	}
	return m
}()

// assign coerces n into the field f of c. The error carries no location;
// callers add the file:line or flag name.
func assign(c *Conf, f *field, n *yaml.Node) error {
	switch f.kind {
	case kindInt:
		v, err := toInt(n)
		if err != nil {
			return err
		}
		*f.ref(c).(*int) = v
	case kindOptInt:
		if s, err := toString(n); err == nil && isNone(s) {
			*f.ref(c).(*int) = -1
			return nil
		}
		v, err := toInt(n)
		if err != nil {
			return err
		}
		*f.ref(c).(*int) = v
	case kindInt64:
		v, err := toInt64(n)
		if err != nil {
			return err
		}
		*f.ref(c).(*int64) = v
	case kindFloat:
		v, err := toFloat(n)
		if err != nil {
			return err
		}
		*f.ref(c).(*float64) = v
	case kindBool:
		v, err := toBool(n)
		if err != nil {
			return err
		}
		*f.ref(c).(*bool) = v
	case kindString:
		v, err := toString(n)
		if err != nil {
			return err
		}
		*f.ref(c).(*string) = v
	case kindPath:
		v, err := toPath(n)
		if err != nil {
			return err
		}
		*f.ref(c).(*string) = v
	case kindOptPath:
		v, err := toOptionalPath(n)
		if err != nil {
			return err
		}
		*f.ref(c).(*string) = v
	case kindPolicy:
		s, err := toString(n)
		if err != nil {
			return err
		}
		v, err := aggregate.ParsePolicy(s)
		if err != nil {
			return err
		}
		*f.ref(c).(*string) = v
	case kindMode:
		s, err := toString(n)
		if err != nil {
			return err
		}
		*f.ref(c).(*Mode) = Mode(s) // checked with the other keys in Validate
	default:
		return fmt.Errorf("internal error: field %s has no coercion", f.key)
	}
	return nil
}

// Set overrides one job_conf key from a command-line flag value, with the
// same coercion as a value in the file, and records the key as set. Keys
// the original knows but this runtime does not use are refused: on a
// command line they are a request we could not honour.
func (c *Conf) Set(key, value string) error {
	f, ok := fieldByKey[key]
	if !ok {
		if originalKeys[key] {
			return fmt.Errorf("job_conf.%s is known to FedScale but not used by this runtime", key)
		}
		return unknownKeyError("job_conf", key, knownKeys)
	}
	if err := assign(c, f, strNode(value)); err != nil {
		return fmt.Errorf("job_conf.%s: %w", key, err)
	}
	c.markSet(key)
	return nil
}

// IsSet reports whether key was given in the job file or by Set.
func (c *Conf) IsSet(key string) bool {
	return c.set[key]
}

// SetKeys returns the keys given in the job file or by Set, sorted.
func (c *Conf) SetKeys() []string {
	keys := make([]string, 0, len(c.set))
	for k := range c.set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (c *Conf) markSet(key string) {
	if c.set[key] {
		return
	}
	// Clone so a Conf copied by value does not see this copy's Sets.
	c.set = maps.Clone(c.set)
	if c.set == nil {
		c.set = make(map[string]bool)
	}
	c.set[key] = true
}

// LogDir is where the job's logs go: {log_path}/logs/{job_name}/{time_stamp}.
func (c *Conf) LogDir() string {
	return filepath.Join(c.LogPath, "logs", c.JobName, c.TimeStamp)
}

// issue is one validation failure; key ("job_conf.rounds", "ports") lets
// Parse point at the line that set it.
type issue struct {
	key string
	msg string
}

func joinIssues(issues []issue, loc func(key string) string) error {
	errs := make([]error, 0, len(issues))
	for _, is := range issues {
		prefix := ""
		if loc != nil {
			prefix = loc(is.key)
		}
		errs = append(errs, errors.New(prefix+is.msg))
	}
	return errors.Join(errs...)
}

// Validate checks the values together: ranges, enumerations and the
// combinations the original mishandled (division by zero, endless loops).
// Parse runs it; run it again after Set.
func (c *Conf) Validate() error {
	return joinIssues(c.issues(), nil)
}

func (c *Conf) issues() []issue {
	var out []issue
	add := func(key, format string, args ...any) {
		out = append(out, issue{"job_conf." + key, fmt.Sprintf(format, args...)})
	}
	bad := make(map[string]bool)

	// Fields are exported, so a caller can store NaN; report it once here
	// and skip the range checks below for that key.
	for i := range fields {
		f := &fields[i]
		if f.kind != kindFloat {
			continue
		}
		if v := *f.ref(c).(*float64); math.IsNaN(v) || math.IsInf(v, 0) {
			add(f.key, "job_conf.%s must be a finite number, got %v", f.key, v)
			bad[f.key] = true
		}
	}

	if c.JobName == "" || strings.ContainsAny(c.JobName, `/\`) || c.JobName == "." || c.JobName == ".." {
		add("job_name", "job_conf.job_name must be a non-empty name without path separators, got %q", clip(c.JobName))
	}
	if strings.ContainsAny(c.TimeStamp, `/\`) || c.TimeStamp == "." || c.TimeStamp == ".." {
		add("time_stamp", "job_conf.time_stamp must not contain path separators, got %q", clip(c.TimeStamp))
	}
	if c.PsPort < 1 || c.PsPort > MaxPort {
		add("ps_port", "job_conf.ps_port must be in 1..%d, got %d", MaxPort, c.PsPort)
	}
	if c.ThisRank < 0 {
		add("this_rank", "job_conf.this_rank must be >= 0 (0 is the aggregator), got %d", c.ThisRank)
	}
	positive := []struct {
		key string
		v   int
	}{
		{"num_executors", c.NumExecutors},
		{"num_participants", c.NumParticipants},
		{"rounds", c.Rounds},
		{"eval_interval", c.EvalInterval},
		{"local_steps", c.LocalSteps},
		{"batch_size", c.BatchSize},
		{"test_bsz", c.TestBsz},
		{"decay_round", c.DecayRound},
	}
	for _, p := range positive {
		if p.v <= 0 {
			add(p.key, "job_conf.%s must be positive, got %d", p.key, p.v)
			bad[p.key] = true
		}
	}
	// Sizes that become allocations on every executor: a batch is
	// batch_size samples of input, a task local_steps batches.
	for _, p := range []struct {
		key    string
		v, max int
	}{
		{"batch_size", c.BatchSize, MaxBatch},
		{"test_bsz", c.TestBsz, MaxBatch},
		{"local_steps", c.LocalSteps, MaxLocalSteps},
		{"num_executors", c.NumExecutors, MaxExecutors},
		// The wire's DataInfo.classes is an int32.
		{"num_classes", c.NumClasses, math.MaxInt32},
	} {
		if p.v > p.max {
			add(p.key, "job_conf.%s must be at most %d, got %d", p.key, p.max, p.v)
			bad[p.key] = true
		}
	}
	if c.ExecutorConfigs != "" {
		if _, err := ParseExecutorConfigs(c.ExecutorConfigs); err != nil {
			add("executor_configs", "job_conf.executor_configs: %v", err)
		}
	}
	if _, err := ParseMode(string(c.ExperimentMode)); err != nil {
		add("experiment_mode", "job_conf.experiment_mode %v", err)
	}
	if c.SampleMode != "random" && c.SampleMode != "oort" {
		add("sample_mode", "job_conf.sample_mode must be random or oort, got %q", clip(c.SampleMode))
	}
	if _, err := aggregate.ParsePolicy(c.GradientPolicy); err != nil {
		add("gradient_policy", "job_conf.gradient_policy: %v", err)
	}
	if c.FilterMore < int64(c.FilterLess) {
		add("filter_more", "job_conf.filter_more (%d) must be at least job_conf.filter_less (%d), or every client is filtered out", c.FilterMore, c.FilterLess)
	}
	if !bad["overcommitment"] && c.Overcommitment < 1 {
		add("overcommitment", "job_conf.overcommitment must be at least 1, got %v", c.Overcommitment)
	}
	if !bad["learning_rate"] && c.LearningRate <= 0 {
		add("learning_rate", "job_conf.learning_rate must be positive, got %v", c.LearningRate)
	}
	if !bad["min_learning_rate"] && c.MinLearningRate < 0 {
		add("min_learning_rate", "job_conf.min_learning_rate must be >= 0, got %v", c.MinLearningRate)
	}
	if !bad["decay_factor"] && (c.DecayFactor <= 0 || c.DecayFactor > 1) {
		add("decay_factor", "job_conf.decay_factor must be in (0, 1], got %v", c.DecayFactor)
	}
	if !bad["test_ratio"] && (c.TestRatio <= 0 || c.TestRatio > 1) {
		add("test_ratio", "job_conf.test_ratio must be in (0, 1], got %v", c.TestRatio)
	}
	if !bad["weight_decay"] && c.WeightDecay < 0 {
		add("weight_decay", "job_conf.weight_decay must be >= 0, got %v", c.WeightDecay)
	}
	if c.CudaDevice < -1 {
		add("cuda_device", "job_conf.cuda_device must be a GPU index >= 0 or none, got %d", c.CudaDevice)
	}
	if c.NumClasses < 0 {
		add("num_classes", "job_conf.num_classes must be >= 0 (0 = from the data), got %d", c.NumClasses)
	}
	if f := c.DataFingerprint; f != "" {
		if len(f) != 64 || strings.Trim(f, "0123456789abcdef") != "" {
			add("data_fingerprint", "job_conf.data_fingerprint must be 64 lowercase hex digits (a SHA-256, as the aggregator logs it), got %q", clip(f))
		} else if c.ExperimentMode == Deployment {
			add("data_fingerprint", "job_conf.data_fingerprint pins the data set of experiment_mode simulation; in deployment each device's data is its own")
		}
	}
	if c.NumLoaders < 0 {
		add("num_loaders", "job_conf.num_loaders must be >= 0, got %d", c.NumLoaders)
	}
	return out
}
