package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/fedscale/fedscale-go/runtime/aggregator"
	"github.com/fedscale/fedscale-go/runtime/config"
	"github.com/fedscale/fedscale-go/runtime/fedlog"
	"github.com/fedscale/fedscale-go/runtime/jobtest"
	pb "github.com/fedscale/fedscale-go/runtime/proto/fedscalev1"
)

const stuckJob = `ps_ip: 127.0.0.1
worker_ips:
    - 127.0.0.1:[1]
job_conf:
    - job_name: stuck
    - log_path: %s
    - data_dir: %s
    - grey_input: True
    - model: logistic
    - num_participants: 2
    - rounds: 2
    - eval_interval: 1
    - local_steps: 2
    - batch_size: 5
    - filter_less: 1
    - test_bsz: 10
    - ps_port: %d
    - use_cuda: False
`

// An executor whose task hangs on storage (its training images turned
// into FIFOs nobody writes, after it loaded them) still exits promptly on
// SIGTERM: the worker inside the task cannot be interrupted, so the
// process must not wait for it.
func TestSIGTERMWhileTaskStuck(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the executor binary")
	}
	bin := filepath.Join(t.TempDir(), "executor")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	home := t.TempDir()
	dataDir := filepath.Join(home, "data")
	if err := jobtest.WriteSynthetic(dataDir, jobtest.SynthOptions{Clients: 4, PerClient: 10, Test: 20, Classes: 3, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := lis.Addr().(*net.TCPAddr).Port
	confPath := filepath.Join(home, "job.yml")
	if err := os.WriteFile(confPath, []byte(fmt.Sprintf(stuckJob, filepath.Join(home, "logs"), dataDir, port)), 0o644); err != nil {
		t.Fatal(err)
	}

	// The executor loads its data, then waits for the aggregator.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--config", confPath, "--rank", "1", "--insecure", "--http-port", "0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stderr)
	var seen strings.Builder
	for lines.Scan() {
		seen.WriteString(lines.Text() + "\n")
		if strings.Contains(lines.Text(), "connecting to aggregator") {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()
	if !strings.Contains(seen.String(), "connecting to aggregator") {
		t.Fatalf("the executor never got to connecting:\n%s", seen.String())
	}
	// Its training images become FIFOs (image 0 stays: loading decoded it).
	train, err := filepath.Glob(filepath.Join(dataDir, "train", "*.png"))
	if err != nil {
		t.Fatal(err)
	}
	var fifos []string
	for _, p := range train {
		if filepath.Base(p) == "0.png" {
			continue
		}
		tmp := p + ".fifo"
		if err := syscall.Mkfifo(tmp, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
		fifos = append(fifos, p)
	}

	job, err := config.Load(confPath)
	if err != nil {
		t.Fatal(err)
	}
	c := job.Conf
	c.TimeStamp = "run1"
	agg, err := aggregator.New(aggregator.Options{Conf: c, Executors: 1, Log: fedlog.New(io.Discard),
		HeartbeatInterval: 100 * time.Millisecond, ExecutorTimeout: 2 * time.Second, ExecutorWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pb.RegisterAggregatorServer(srv, agg)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	go func() { _, _ = agg.Run(ctx) }()

	// Wait until a training task reads a FIFO: opening its write end
	// without blocking succeeds once a reader has it open. Holding it open
	// and writing nothing keeps that read blocked.
	deadline := time.Now().Add(time.Minute)
	var held *os.File
	for held == nil {
		for _, p := range fifos {
			if f, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				held = f
				break
			} else if !errors.Is(err, syscall.ENXIO) {
				t.Fatal(err)
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no training task ever read its images")
		}
		time.Sleep(5 * time.Millisecond)
	}
	defer held.Close()
	time.Sleep(200 * time.Millisecond) // let the read start blocking

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		t.Logf("executor exited %v after SIGTERM (%v)", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(5 * time.Second):
		t.Fatal("the executor did not exit within 5 s of SIGTERM while its task was stuck")
	}
}
