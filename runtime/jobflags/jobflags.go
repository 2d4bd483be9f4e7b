// Package jobflags binds the command-line flags that the aggregator and
// executor commands share: the job file and the job_conf overrides users
// are used to passing to FedScale's processes (--rank, --ps-ip, ...).
package jobflags

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/fedscale/fedscale-go/runtime/config"
)

// Flags holds the parsed values.
type Flags struct {
	Config   string
	Set      []string // key=value overrides of any job_conf key
	HTTPPort int

	fs *pflag.FlagSet // which named overrides were given

	// Named overrides, applied when given (any value: a bad one is an
	// error from the job file's rules, never silently ignored).
	rank, psPort           int
	psIP, dataDir, logPath string
	jobName, timeStamp     string
	model                  string
	rounds                 int
}

// Bind registers the flags on fs.
func Bind(fs *pflag.FlagSet) *Flags {
	f := &Flags{fs: fs}
	fs.StringVar(&f.Config, "config", "", "the FedScale job file (YAML: top-level keys and a job_conf list)")
	fs.StringArrayVar(&f.Set, "set", nil, "override a job_conf key, as key=value (repeatable)")
	fs.IntVar(&f.rank, "rank", -1, "this process's rank (job_conf this_rank): 0 aggregator, 1..N executors")
	fs.StringVar(&f.psIP, "ps-ip", "", "aggregator host (job_conf ps_ip)")
	fs.IntVar(&f.psPort, "ps-port", -1, "aggregator gRPC port (job_conf ps_port)")
	fs.StringVar(&f.dataDir, "data-dir", "", "data set folder (job_conf data_dir)")
	fs.StringVar(&f.logPath, "log-path", "", "log root (job_conf log_path): logs go to LOG_PATH/logs/JOB/TIME_STAMP")
	fs.StringVar(&f.jobName, "job-name", "", "job name (job_conf job_name)")
	fs.StringVar(&f.timeStamp, "time-stamp", "", "log folder time stamp (job_conf time_stamp; default: start time)")
	fs.StringVar(&f.model, "model", "", "model name (job_conf model)")
	fs.IntVar(&f.rounds, "rounds", -1, "rounds to train (job_conf rounds)")
	fs.IntVar(&f.HTTPPort, "http-port", -1, "port of /healthz, /readyz and /metrics (default: ps_port+1 for the aggregator, ps_port+1+rank for executors; 0 picks a free port)")
	return f
}

// given reports whether the named flag was on the command line.
func (f *Flags) given(name string) bool { return f.fs != nil && f.fs.Changed(name) }

// Load reads the job file and applies the overrides, then validates.
func (f *Flags) Load() (*config.Job, error) {
	if f.Config == "" {
		return nil, errors.New("--config: a job file is required (e.g. --config benchmark/configs/femnist/conf.yml)")
	}
	job, err := config.Load(f.Config)
	if err != nil {
		return nil, err
	}
	set := func(flag, key, value string) error {
		if err := job.Conf.Set(key, value); err != nil {
			return fmt.Errorf("--%s: %w", flag, err)
		}
		return nil
	}
	for _, o := range []struct {
		flag, key, value string
		given            bool
	}{
		{"rank", "this_rank", strconv.Itoa(f.rank), f.given("rank")},
		{"ps-ip", "ps_ip", f.psIP, f.given("ps-ip")},
		{"ps-port", "ps_port", strconv.Itoa(f.psPort), f.given("ps-port")},
		{"data-dir", "data_dir", f.dataDir, f.given("data-dir")},
		{"log-path", "log_path", f.logPath, f.given("log-path")},
		{"job-name", "job_name", f.jobName, f.given("job-name")},
		{"time-stamp", "time_stamp", f.timeStamp, f.given("time-stamp")},
		{"model", "model", f.model, f.given("model")},
		{"rounds", "rounds", strconv.Itoa(f.rounds), f.given("rounds")},
	} {
		if o.given {
			if err := set(o.flag, o.key, o.value); err != nil {
				return nil, err
			}
		}
	}
	for _, kv := range f.Set {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("--set %q: expected key=value", kv)
		}
		if err := set("set", strings.TrimSpace(k), strings.TrimSpace(v)); err != nil {
			return nil, err
		}
	}
	// A ps_ip given at the top level of the job file (as docker and ssh
	// jobs write it) is the aggregator's address unless job_conf says so.
	if job.PsIP != "" && !job.Conf.IsSet("ps_ip") {
		job.Conf.PsIP = job.PsIP
	}
	if err := job.Conf.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", f.Config, err)
	}
	return job, nil
}

// HealthAddr is the address of the health endpoint for a process of rank.
func (f *Flags) HealthAddr(c config.Conf, rank int) string {
	port := f.HTTPPort
	if port < 0 {
		port = c.PsPort + 1 + rank
	}
	return ":" + strconv.Itoa(port)
}
