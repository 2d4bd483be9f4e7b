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
	"github.com/fedscale/fedscale-go/runtime/mtls"
)

// Flags holds the parsed values.
type Flags struct {
	Config   string
	Set      []string // key=value overrides of any job_conf key
	HTTPPort int
	// Insecure runs the job's wire in plain text (no TLS files needed).
	Insecure bool
	// TLSDir is a folder of the launcher's TLS files (runtime/mtls.Dir).
	TLSDir string

	fs *pflag.FlagSet // holds the named overrides' values
}

// overrides are the named flags that each set one job_conf key, applied
// when given (any value: a bad one is an error from the job file's rules,
// never silently ignored).
var overrides = []struct {
	flag, key, usage string
	isInt            bool
}{
	{"rank", "this_rank", "this process's rank (job_conf this_rank): 0 aggregator, 1..N executors", true},
	{"ps-ip", "ps_ip", "aggregator host (job_conf ps_ip)", false},
	{"ps-port", "ps_port", "aggregator gRPC port (job_conf ps_port)", true},
	{"data-dir", "data_dir", "data set folder (job_conf data_dir)", false},
	{"log-path", "log_path", "log root (job_conf log_path): logs go to LOG_PATH/logs/JOB/TIME_STAMP", false},
	{"job-name", "job_name", "job name (job_conf job_name)", false},
	{"time-stamp", "time_stamp", "log folder time stamp (job_conf time_stamp; default: start time)", false},
	{"model", "model", "model name (job_conf model)", false},
	{"rounds", "rounds", "rounds to train (job_conf rounds)", true},
	{"tls-ca", "tls_ca", "the job's CA certificate, PEM (job_conf tls_ca)", false},
	{"tls-cert", "tls_cert", "this process's certificate, PEM, issued by --tls-ca to its rank (job_conf tls_cert)", false},
	{"tls-key", "tls_key", "this process's private key, PEM (job_conf tls_key)", false},
}

// Bind registers the flags on fs.
func Bind(fs *pflag.FlagSet) *Flags {
	f := &Flags{fs: fs}
	fs.StringVar(&f.Config, "config", "", "the FedScale job file (YAML: top-level keys and a job_conf list)")
	fs.StringArrayVar(&f.Set, "set", nil, "override a job_conf key, as key=value (repeatable)")
	for _, o := range overrides {
		if o.isInt {
			fs.Int(o.flag, -1, o.usage)
		} else {
			fs.String(o.flag, "", o.usage)
		}
	}
	fs.StringVar(&f.TLSDir, "tls-dir", "", "a folder of the job's TLS files as the launcher writes them (ca.crt, aggregator.crt/.key, executor-N.crt/.key); instead of --tls-ca/--tls-cert/--tls-key")
	fs.BoolVar(&f.Insecure, "insecure", false, "no TLS: anyone who reaches ps_port can join the job (only for jobs on loopback or a trusted network)")
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
	for _, o := range overrides {
		if f.given(o.flag) {
			if err := set(o.flag, o.key, f.fs.Lookup(o.flag).Value.String()); err != nil {
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

// TLS is the process's TLS material from the job file and the flags.
// With none, --insecure must say that plain text is meant; with both, the
// choice is unclear and is an error.
func (f *Flags) TLS(c config.Conf, rank int) (files mtls.Files, insecure bool, err error) {
	files = mtls.Files{CA: c.TLSCA, Cert: c.TLSCert, Key: c.TLSKey}
	if f.TLSDir != "" {
		if !files.IsZero() {
			return files, false, errors.New("--tls-dir and TLS files (--tls-ca/--tls-cert/--tls-key or job_conf tls_*) both given: choose one")
		}
		files = mtls.Dir(f.TLSDir, rank)
	}
	switch {
	case files.IsZero() && !f.Insecure:
		return files, false, errors.New("no TLS material: give --tls-dir, or --tls-ca, --tls-cert and --tls-key (the launcher makes them), or --insecure for a job on loopback or a trusted network")
	case !files.IsZero() && f.Insecure:
		return files, false, errors.New("--insecure and TLS files (--tls-ca/--tls-cert/--tls-key or job_conf tls_*) both given: choose one")
	case f.Insecure:
		return files, true, nil
	}
	return files, false, files.Check()
}

// HealthAddr is the address of the health endpoint for a process of rank.
func (f *Flags) HealthAddr(c config.Conf, rank int) string {
	port := f.HTTPPort
	if port < 0 {
		port = config.HealthPort(c.PsPort, rank)
	}
	return ":" + strconv.Itoa(port)
}
