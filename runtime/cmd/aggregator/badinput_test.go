package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fedscale/fedscale-go/runtime/config"
	"github.com/fedscale/fedscale-go/runtime/jobtest"
)

// TestBadInput runs the real commands on bad job files and data: each must
// exit non-zero promptly with one clear message naming the key or file,
// never a panic and never a hang.
func TestBadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs binaries")
	}
	bin := buildBinaries(t)
	root := t.TempDir()
	good := filepath.Join(root, "good")
	if err := jobtest.WriteSynthetic(good, jobtest.SynthOptions{Clients: 4, PerClient: 12, Test: 8, Classes: 3, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	// Data sets broken in one way each.
	broken := func(name string, edit func(dir string)) string {
		dir := filepath.Join(root, name)
		if err := jobtest.WriteSynthetic(dir, jobtest.SynthOptions{Clients: 4, PerClient: 12, Test: 8, Classes: 3, Seed: 1}); err != nil {
			t.Fatal(err)
		}
		edit(dir)
		return dir
	}
	badLabel := broken("badlabel", func(dir string) {
		p := filepath.Join(dir, "client_data_mapping", "train.csv")
		b, _ := os.ReadFile(p)
		lines := strings.Split(string(b), "\n")
		f := strings.Split(lines[3], ",")
		f[3] = "seven"
		lines[3] = strings.Join(f, ",")
		_ = os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o644)
	})
	missingImage := broken("noimage", func(dir string) { _ = os.Remove(filepath.Join(dir, "train", "5.png")) })

	// Files that must not be read to the end: one never ends, one blocks
	// in open(2) until a writer comes, one is far over its bound.
	fifo := filepath.Join(root, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(root, "huge.yml")
	if err := os.WriteFile(huge, bytes.Repeat([]byte("# a comment\n"), config.MaxJobFileBytes/12+1), 0o644); err != nil {
		t.Fatal(err)
	}

	const base = "job_conf:\n    - job_name: bad\n    - log_path: %s\n    - data_dir: %s\n    - grey_input: True\n    - model: logistic\n    - batch_size: 10\n    - filter_less: 10\n    - use_cuda: False\n"
	conf := func(extra string, dataDir string) string {
		return fmt.Sprintf(base, root, dataDir) + extra
	}
	for _, tc := range []struct {
		name string
		file string // job file body, or a path when it starts with /; "" means no file at all
		who  string // aggregator or executor
		want string
	}{
		{"missing job file", "", "aggregator", "no such file"},
		{"job file is /dev/zero", "/dev/zero", "aggregator", "reading job file: /dev/zero is a device, not a regular file"},
		{"job file is a FIFO", fifo, "executor", "reading job file: " + fifo + " is a named pipe (FIFO), not a regular file"},
		{"job file over the bound", huge, "aggregator", fmt.Sprintf("reading job file: %s is %d bytes, more than the %d allowed", huge, (config.MaxJobFileBytes/12+1)*12, config.MaxJobFileBytes)},
		{"trace is /dev/zero", conf("    - device_avail_file: /dev/zero\n", good), "aggregator", "job_conf.device_avail_file: trace: behavior trace: /dev/zero is a device, not a regular file"},
		{"trace is a FIFO", conf("    - device_conf_file: "+fifo+"\n", good), "aggregator", "job_conf.device_conf_file: trace: capacity trace: " + fifo + " is a named pipe (FIFO)"},
		{"model_init_file is /dev/zero", conf("    - model_init_file: /dev/zero\n", good), "aggregator", "job_conf.model_init_file: /dev/zero is a device"},
		{"data_map_file is a FIFO", conf("    - data_map_file: "+fifo+"\n", good), "executor", "client data mapping: " + fifo + " is a named pipe (FIFO)"},
		{"malformed yaml", "job_conf:\n  - rounds: [1,\n", "aggregator", "conf.yml"},
		{"unknown key", conf("    - learing_rate: 0.1\n", good), "aggregator", `did you mean "learning_rate"`},
		{"unknown top-level key", "use_contianer: docker\n" + conf("", good), "aggregator", `did you mean "use_container"`},
		{"wrong type", conf("    - rounds: ten\n", good), "aggregator", `rounds: expected an integer, got "ten"`},
		{"filter_more below filter_less", conf("    - filter_more: 5\n", good), "aggregator", "filter_more (5) must be at least job_conf.filter_less (10)"},
		{"eval_interval zero", conf("    - eval_interval: 0\n", good), "aggregator", "eval_interval"},
		{"decay_round zero", conf("    - decay_round: 0\n", good), "aggregator", "decay_round"},
		{"unknown model", conf("    - model: resnet1234\n", good), "executor", "supported: lenet5, logistic, lr, mlp, mobilenet_v2, resnet18, resnet34, resnet50, shufflenet_v2_x0_5"},
		{"missing trace file", conf("    - device_conf_file: /nonexistent/client_device_capacity\n", good), "aggregator", "device_conf_file"},
		{"missing data_dir", conf("", filepath.Join(root, "nope")), "executor", "nope"},
		{"missing map file", conf("    - data_map_file: "+filepath.Join(root, "nope.csv")+"\n", good), "executor", "nope.csv"},
		{"bad label in csv", conf("", badLabel), "executor", `"seven"`},
		{"missing image", conf("", missingImage), "executor", "5.png"},
		{"cifar10 without the batches", conf("    - data_set: cifar10\n    - grey_input: False\n", good), "executor",
			"CIFAR-10 batches missing: " + filepath.Join(good, "cifar-10-batches-py") + "/{data_batch_1,data_batch_2,data_batch_3,data_batch_4,data_batch_5,test_batch}"},
		{"unknown data set", conf("    - data_set: cifar\n    - grey_input: False\n", good), "executor", `job_conf.data_set: unknown data set "cifar" (supported: Mnist, cifar10, emnist, femnist`},
		{"no aggregator", conf("", good), "executor", "unreachable for 2s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "conf.yml")
			if strings.HasPrefix(tc.file, "/") {
				path = tc.file
			} else if tc.file != "" {
				if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			args := []string{"--config", path, "--ps-port", fmt.Sprint(freePort(t)), "--http-port", "0", "--insecure"}
			if tc.who == "executor" {
				args = append(args, "--rank", "1", "--connect-timeout", "2s")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(bin, tc.who), args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if ctx.Err() != nil {
				t.Fatalf("%s hung on bad input; stderr:\n%s", tc.who, stderr.String())
			}
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("%s: got %v, want exit status 1; stderr:\n%s", tc.who, err, stderr.String())
			}
			out := stderr.String()
			if strings.Contains(out, "panic:") || strings.Contains(out, "goroutine ") {
				t.Fatalf("%s panicked:\n%s", tc.who, out)
			}
			last := lastLine(out)
			if !strings.Contains(last, tc.want) {
				t.Errorf("%s error %q does not mention %q", tc.who, last, tc.want)
			}
		})
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	// The error is printed last, but a multi-line error list starts with
	// the command name: keep from there.
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "aggregator:") || strings.HasPrefix(lines[i], "executor:") {
			return strings.Join(lines[i:], "\n")
		}
	}
	return lines[len(lines)-1]
}
