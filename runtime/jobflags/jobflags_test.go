package jobflags

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

const job = `ps_ip: 10.1.2.3
worker_ips:
    - 10.1.2.4:[2]
job_conf:
    - job_name: femnist
    - rounds: 5
    - batch_size: 20
    - filter_less: 20
`

func parse(t *testing.T, args ...string) (*Flags, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "conf.yml")
	if err := os.WriteFile(path, []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	f := Bind(fs)
	return f, fs.Parse(append([]string{"--config", path}, args...))
}

func TestOverrides(t *testing.T) {
	f, err := parse(t, "--rank", "2", "--ps-port", "31000", "--rounds", "9", "--set", "learning_rate=0.01", "--set", "use_cuda=False")
	if err != nil {
		t.Fatal(err)
	}
	j, err := f.Load()
	if err != nil {
		t.Fatal(err)
	}
	c := j.Conf
	if c.ThisRank != 2 || c.PsPort != 31000 || c.Rounds != 9 || c.LearningRate != 0.01 || c.UseCuda {
		t.Errorf("overrides not applied: rank %d port %d rounds %d lr %v cuda %v", c.ThisRank, c.PsPort, c.Rounds, c.LearningRate, c.UseCuda)
	}
	if c.PsIP != "10.1.2.3" {
		t.Errorf("ps_ip = %q, want the top-level 10.1.2.3", c.PsIP)
	}
	if got := f.HealthAddr(c, 2); got != ":31003" {
		t.Errorf("health addr = %q, want :31003", got)
	}
	if n, err := j.Executors(); err != nil || n != 2 {
		t.Errorf("executors = %d, %v; want 2 from worker_ips", n, err)
	}
}

func TestOverrideErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--set", "rounds"}, "expected key=value"},
		{[]string{"--set", "rounds=ten"}, "--set"},
		{[]string{"--set", "filter_more=5"}, "filter_more (5) must be at least job_conf.filter_less"},
		{[]string{"--ps-port", "70000"}, "ps_port"},
		// Values that look like "not given" are given: an error, not ignored.
		{[]string{"--ps-port", "-5"}, "job_conf.ps_port must be in 1..65535, got -5"},
		{[]string{"--rank", "-1"}, "job_conf.this_rank must be >= 0"},
		{[]string{"--rounds", "-3"}, "job_conf.rounds must be positive, got -3"},
	} {
		f, err := parse(t, tc.args...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Load(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	if _, err := Bind(fs).Load(); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Errorf("no --config: got %v", err)
	}
}

func TestTLSChoice(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		rank     int
		cert     string // the certificate file chosen
		insecure bool
		err      string
	}{
		{nil, 0, "", false, "no TLS material"},
		{[]string{"--insecure"}, 0, "", true, ""},
		{[]string{"--tls-dir", "/t"}, 0, "/t/aggregator.crt", false, ""},
		{[]string{"--tls-dir", "/t"}, 3, "/t/executor-3.crt", false, ""},
		{[]string{"--tls-ca", "a", "--tls-cert", "b", "--tls-key", "c"}, 1, "b", false, ""},
		{[]string{"--set", "tls_ca=a", "--set", "tls_cert=b", "--set", "tls_key=c"}, 1, "b", false, ""},
		{[]string{"--tls-ca", "a", "--tls-cert", "b"}, 1, "", false, "--tls-key: required"},
		{[]string{"--tls-dir", "/t", "--insecure"}, 1, "", false, "both given"},
		{[]string{"--tls-dir", "/t", "--tls-ca", "a"}, 1, "", false, "--tls-dir and TLS files"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			f, err := parse(t, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			j, err := f.Load()
			if err != nil {
				t.Fatal(err)
			}
			files, insecure, err := f.TLS(j.Conf, tc.rank)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want an error containing %q", err, tc.err)
				}
				return
			}
			if err != nil || insecure != tc.insecure || files.Cert != tc.cert {
				t.Fatalf("got %+v insecure=%v err=%v; want cert %q insecure=%v", files, insecure, err, tc.cert, tc.insecure)
			}
		})
	}
}
