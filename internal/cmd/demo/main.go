// Command demo is `make demo` (scripts/demo.sh): it converts real MNIST
// (DATASET=mnist, from the GoMNIST Go module) or Fashion-MNIST
// (DATASET=fashion, Debian's dataset-fashion-mnist) into FedScale's FEMNIST
// layout with a non-IID client split, then runs 1 aggregator and 2
// executor processes on this machine and prints the FedScale test lines.
// It fails unless the final top_1 reaches the dataset's bar (0.90 MNIST,
// 0.75 Fashion-MNIST). MODEL=resnet18 (or another torchvision model) runs
// a short job through FedScale's femnist pipeline instead (RGB 32x32, 62
// classes), with a bar of 0.5 after 5 rounds.
//
// Environment: DATASET (mnist), MODEL (mlp), BIN (the runtime's binaries;
// bin), WORK (data, job file, logs; build/demo), PORT (ps_port; 29500),
// ROUNDS (80 for mlp, else 5), GO (the go command). It runs from the
// repository root.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fedscale/fedscale-go/internal/mnist"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// demo is one demo job.
type demo struct {
	dataset, model string
	bin, work      string
	port, rounds   int
	testBsz        int
	bar            float64 // the final top_1 must reach it
	labelNames     string  // fsdata --label-names
}

// configure reads the environment (getenv) and checks it: one error
// naming the variable.
func configure(getenv func(string) string) (*demo, error) {
	d := &demo{dataset: getenv("DATASET"), model: getenv("MODEL"), bin: getenv("BIN"), work: getenv("WORK"), port: 29500}
	if d.dataset == "" {
		d.dataset = "mnist"
	}
	if d.model == "" {
		d.model = "mlp"
	}
	if d.bin == "" {
		d.bin = "bin"
	}
	if d.work == "" {
		d.work = filepath.Join("build", "demo")
	}
	switch d.dataset {
	case "mnist":
		d.labelNames, d.bar = "mnist", 0.90
	case "fashion":
		d.labelNames, d.bar = "fashion", 0.75
	default:
		return nil, fmt.Errorf("DATASET must be mnist or fashion, got %q", d.dataset)
	}
	// The mlp demo feeds the images as stored (our grey_input key); the
	// torchvision models go through FedScale's femnist pipeline.
	if d.model == "mlp" {
		d.rounds, d.testBsz = 80, 100
	} else {
		d.rounds, d.testBsz, d.bar = 5, 50, 0.5
	}
	for _, v := range []struct {
		name     string
		to       *int
		min, max int
	}{{"PORT", &d.port, 1, 65535 - 3}, {"ROUNDS", &d.rounds, 1, 1 << 20}} {
		s := getenv(v.name)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < v.min || n > v.max {
			return nil, fmt.Errorf("%s=%q: want a number in %d..%d", v.name, s, v.min, v.max)
		}
		*v.to = n
	}
	return d, nil
}

func (d *demo) jobName() string { return "demo_" + d.dataset }

// jobFile is the demo's job file, as FedScale users write them: top-level
// keys plus job_conf.
func (d *demo) jobFile(data string) []byte {
	pipeline := "    - data_set: femnist\n"
	if d.model == "mlp" {
		pipeline = "    - data_set: " + d.dataset + "\n    - grey_input: True\n"
	}
	return []byte(`ps_ip: 127.0.0.1
worker_ips:
    - 127.0.0.1:[2]
setup_commands:
job_conf:
    - job_name: ` + d.jobName() + `
    - log_path: ` + d.work + `
    - ps_port: ` + strconv.Itoa(d.port) + `
` + pipeline + `    - data_dir: ` + data + `
    - model: ` + d.model + `
    - num_participants: 10
    - rounds: ` + strconv.Itoa(d.rounds) + `
    - eval_interval: 10
    - local_steps: 10
    - batch_size: 20
    - test_bsz: ` + strconv.Itoa(d.testBsz) + `
    - filter_less: 20
    - learning_rate: 0.05
    - use_cuda: False
`)
}

// finalTop1 is the top_1 of the last line of a metrics.jsonl.
func finalTop1(metrics []byte) (float64, error) {
	lines := strings.Split(strings.TrimSpace(string(metrics)), "\n")
	var last struct {
		Round int      `json:"round"`
		Top1  *float64 `json:"top_1"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		return 0, fmt.Errorf("last line: %w", err)
	}
	if last.Top1 == nil {
		return 0, fmt.Errorf("round %d, the last, has no top_1 (no evaluation after the last round?)", last.Round)
	}
	return *last.Top1, nil
}

func run(ctx context.Context) error {
	d, err := configure(os.Getenv)
	if err != nil {
		return err
	}
	if d.work, err = filepath.Abs(d.work); err != nil {
		return err
	}
	if err := os.MkdirAll(d.work, 0o755); err != nil {
		return err
	}
	idx := mnist.FashionDir
	if d.dataset == "mnist" {
		if idx, err = mnist.IDXDir(ctx, os.Getenv("GO")); err != nil {
			return err
		}
	} else if _, err := os.Stat(idx); err != nil {
		return errors.New("Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist")
	}
	data := filepath.Join(d.work, "data-"+d.dataset)
	if _, err := os.Stat(filepath.Join(data, "client_data_mapping", "test.csv")); err != nil {
		cmd := exec.CommandContext(ctx, filepath.Join(d.bin, "fsdata"), "--idx-dir", idx, "--out", data, "--clients", "100",
			"--alpha", "0.5", "--seed", "1", "--label-names", d.labelNames, "--force")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("fsdata: %w", err)
		}
	}
	job := filepath.Join(d.work, "demo-"+d.dataset+".yml")
	if err := os.WriteFile(job, d.jobFile(data), 0o644); err != nil {
		return err
	}
	stamp := time.Now().Format("0102_150405")
	start := time.Now()
	if err := d.runJob(ctx, job, stamp); err != nil {
		return err
	}
	elapsed := time.Since(start)
	logDir := filepath.Join(d.work, "logs", d.jobName(), stamp)
	metrics, err := os.ReadFile(filepath.Join(logDir, "metrics.jsonl"))
	if err != nil {
		return err
	}
	top1, err := finalTop1(metrics)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(logDir, "metrics.jsonl"), err)
	}
	fmt.Printf("demo: %s, %s, 1 aggregator + 2 executors, %d rounds in %.1f s; final top_1 %g (bar %g)\n",
		d.dataset, d.model, d.rounds, elapsed.Seconds(), top1, d.bar)
	fmt.Println("demo: logs in", logDir)
	if top1 < d.bar {
		return fmt.Errorf("final top_1 %g below %g", top1, d.bar)
	}
	return nil
}

// runJob runs the aggregator and 2 executors (stderr of each in
// WORK/<name>.stderr) until they exit, printing the aggregator's test,
// failure and error lines as they come. A process that fails ends the
// others.
func (d *demo) runJob(ctx context.Context, job, stamp string) error {
	type proc struct {
		name string
		cmd  *exec.Cmd
		log  *os.File
	}
	var procs []proc
	defer func() {
		for _, p := range procs {
			if p.cmd.ProcessState == nil { // not waited for: still running
				_ = p.cmd.Process.Kill()
				_ = p.cmd.Wait()
			}
			p.log.Close()
		}
	}()
	start := func(name string, echo io.Writer, argv ...string) error {
		f, err := os.Create(filepath.Join(d.work, name+".stderr"))
		if err != nil {
			return err
		}
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Stderr = f
		if echo != nil {
			cmd.Stderr = io.MultiWriter(f, echo)
		}
		if err := cmd.Start(); err != nil {
			f.Close()
			return fmt.Errorf("starting %s: %w", name, err)
		}
		procs = append(procs, proc{name, cmd, f})
		return nil
	}
	echo := &lineFilter{out: os.Stdout, keep: []string{"FL Testing", "Job failed", "ERROR"}}
	if err := start("aggregator", echo, filepath.Join(d.bin, "aggregator"), "--config", job, "--insecure", "--time-stamp", stamp, "--no-resume"); err != nil {
		return err
	}
	for rank := 1; rank <= 2; rank++ {
		r := strconv.Itoa(rank)
		if err := start("executor-"+r, nil, filepath.Join(d.bin, "executor"), "--config", job, "--insecure", "--rank", r); err != nil {
			return err
		}
	}
	for _, p := range procs {
		if err := p.cmd.Wait(); err != nil {
			return fmt.Errorf("%s failed (%w); see %s", p.name, err, p.log.Name())
		}
	}
	return nil
}

// lineFilter writes the complete lines holding one of keep to out.
type lineFilter struct {
	out  io.Writer
	keep []string
	buf  bytes.Buffer
}

func (l *lineFilter) Write(p []byte) (int, error) {
	l.buf.Write(p)
	for {
		line, err := l.buf.ReadBytes('\n')
		if err != nil { // incomplete: keep it for the next write
			l.buf.Write(line)
			return len(p), nil
		}
		for _, k := range l.keep {
			if bytes.Contains(line, []byte(k)) {
				_, _ = l.out.Write(line)
				break
			}
		}
	}
}
