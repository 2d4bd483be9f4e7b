// Command fedscaleref (`make bench-fedscale`, scripts/fedscale-ref/run.sh):
// wall time of the ORIGINAL FedScale (Python) next to ours on one example
// job, same job file, same data, same traces, same machine.
//
//	fedscaleref [both|fedscale|ours]   # prepare, then FedScale and/or ours
//
// Environment: ROUNDS (fewer rounds for both), OURS_REV (ours built from
// that commit, git archive into build/fedscale-ref/ours-<rev>, not the
// working tree), FS_PORT and OUR_PORT (ps_port of each run; 29517, 29617),
// FEDSCALE_MIRROR (FedScale's bare mirror; default
// /work/.mirror/SymbioticLab+FedScale/repo). It runs from the repository
// root. The two runs go one after the other, never together; keep the
// machine otherwise idle while they run.
//
// Needs (Debian 12): /usr/bin/python3 with python3-torch,
// python3-torchvision, python3-numpy, python3-yaml, python3-pil,
// python3-grpcio, python3-protobuf; dataset-fashion-mnist; Go, make, git,
// /usr/bin/time. FedScale's source is extracted from the mirror file by
// file: `git archive HEAD` stops at a blob the mirror lacks
// (benchmark/dataset/data/device_info/client_behave_trace), which we do not
// need anyway.
//
// Everything lands under build/fedscale-ref (git-ignored):
//
//	src/                   FedScale at the mirror's HEAD (commit in src/COMMIT), unmodified
//	data/femnist           bin/fsdata's FEMNIST layout from Fashion-MNIST (80 clients, 6000 train + 1000 test images)
//	data/device_info/      client_device_capacity, client_behave_trace: scripts/fedscale-ref/write_traces.py,
//	                       FedScale's pickle format, the content of examples_test.go's writeTraces
//	femnist_k8s.yml        runtime/jobtest/testdata/fedscale/femnist_k8s.yml with the container's data
//	                       folder -> data/, log_path -> runs/fedscale, local_steps 5 -> 20 (rounds -> $ROUNDS if set)
//	runs/fedscale/         FedScale's logs; *.out (stdout+stderr), *.time (/usr/bin/time -v), wall_s,
//	                       loadavg and proc_stat (machine load at start and end)
//	runs/ours/             our logs (logs/femnist_k8s/ref/metrics.jsonl), the same
//
// FedScale's command lines are those docker/driver.py builds for a local
// ("default" container) job with worker_ips [localhost:[2]] (fedscaleFlags),
// then the aggregator gets --this_rank=0 --num_executors=2
// --executor_configs=localhost:[2] and executor i --this_rank=i
// --num_executors=2 --cuda_device=cuda:0 (ignored: use_cuda False). We add
// --ps_port (FedScale's default 29500 might be taken). driver.py sleeps 10 s
// before it starts the executors; here all three start at once (executors
// retry registration every 5 s), like ours. PYTHONPATH puts
// scripts/fedscale-ref/stubs first: stand-ins for modules FedScale imports
// at the top but that Debian cannot provide (wandb, tensorflow, overrides,
// torch.utils.tensorboard; see each file's docstring). No patch to
// FedScale's sources is needed.
//
// Wall time: from starting the three processes to the aggregator's exit.
// Top-1 (a fraction in both): FedScale's aggregator log lines "FL Testing in
// round: N"; ours, metrics.jsonl records that carry top_1. Round numbering
// differs: with rounds: 21 FedScale trains 20 rounds and tests at its
// "round 1" (the untrained model, ours' round 0), 10 and 20; the 20th is
// never tested. Ours trains 21 rounds and tests at 0, 10, 20 and 21.
// FedScale also flips test images at random (its 'mnist' test transform has
// RandomHorizontalFlip), so its top-1 varies from run to run; ours
// evaluates without flips and repeats exactly.
//
// Measured 2026-12-01 (2-core VM, FedScale 7ec441c2, ours 9cf399980bd3, two
// runs each while the machine was otherwise idle, per proc_stat): FedScale
// 304.6 s and 285.6 s, ours 151.9 s and 155.3 s.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const python = "/usr/bin/python3"

// env is the command's configuration.
type env struct {
	root, ref, mirror string
	rounds            string // "" keeps the job file's
	fsPort, ourPort   int
	oursRev           string
	bin               string // our binaries
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fedscaleref:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	which := "both"
	if len(args) == 1 {
		which = args[0]
	}
	if len(args) > 1 || (which != "both" && which != "fedscale" && which != "ours") {
		return errors.New("usage: fedscaleref [both|fedscale|ours]")
	}
	e, err := fromEnv()
	if err != nil {
		return err
	}
	job, err := e.prepare(ctx)
	if err != nil {
		return err
	}
	if which != "ours" {
		if err := e.runFedScale(ctx, job); err != nil {
			return err
		}
	}
	if which != "fedscale" {
		return e.runOurs(ctx, job)
	}
	return nil
}

func fromEnv() (*env, error) {
	root, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	e := &env{root: root, ref: filepath.Join(root, "build", "fedscale-ref"), oursRev: os.Getenv("OURS_REV"),
		mirror: os.Getenv("FEDSCALE_MIRROR"), rounds: os.Getenv("ROUNDS"), fsPort: 29517, ourPort: 29617}
	if e.mirror == "" {
		e.mirror = "/work/.mirror/SymbioticLab+FedScale/repo"
	}
	if e.rounds != "" {
		if n, err := strconv.Atoi(e.rounds); err != nil || n < 1 {
			return nil, fmt.Errorf("ROUNDS=%q: want a positive number of rounds", e.rounds)
		}
	}
	for _, p := range []struct {
		name string
		port *int
	}{{"FS_PORT", &e.fsPort}, {"OUR_PORT", &e.ourPort}} {
		if v := os.Getenv(p.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 65535-4 { // the job's health ports follow ps_port
				return nil, fmt.Errorf("%s=%q: want a port in 1..65531", p.name, v)
			}
			*p.port = n
		}
	}
	return e, nil
}

// command runs argv, its output on stderr.
func command(ctx context.Context, dir string, argv ...string) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	return nil
}

func output(ctx context.Context, argv ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	return out, nil
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

// prepare extracts FedScale, builds ours, writes the data, the traces and
// the job file, and returns the job file's path.
func (e *env) prepare(ctx context.Context) (string, error) {
	src := filepath.Join(e.ref, "src")
	if !exists(filepath.Join(src, "COMMIT")) {
		fmt.Println("extracting FedScale from", e.mirror)
		if err := extract(ctx, e.mirror, src); err != nil {
			return "", err
		}
	}
	if err := e.buildOurs(ctx); err != nil {
		return "", err
	}
	v, _ := exec.CommandContext(ctx, filepath.Join(e.bin, "aggregator"), "--version").CombinedOutput()
	first, _, _ := strings.Cut(string(v), "\n")
	fmt.Printf("ours: %s (%s)\n", e.bin, first)

	data := filepath.Join(e.ref, "data")
	if !exists(filepath.Join(data, "femnist", "client_data_mapping", "train.csv")) {
		if err := command(ctx, "", filepath.Join(e.bin, "fsdata"), "--idx-dir", "/usr/share/datasets/fashion-mnist", "--label-names", "fashion",
			"--train-samples", "6000", "--test-samples", "1000", "--out", filepath.Join(data, "femnist"),
			"--clients", "80", "--min-samples", "21"); err != nil {
			return "", err
		}
	}
	if err := command(ctx, "", python, filepath.Join(e.root, "scripts", "fedscale-ref", "write_traces.py"), filepath.Join(data, "device_info")); err != nil {
		return "", err
	}
	orig := filepath.Join(e.root, "runtime", "jobtest", "testdata", "fedscale", "femnist_k8s.yml")
	b, err := os.ReadFile(orig)
	if err != nil {
		return "", err
	}
	b, err = rewriteJob(b, data, filepath.Join(e.ref, "runs", "fedscale"), e.rounds)
	if err != nil {
		return "", fmt.Errorf("%s: %w", orig, err)
	}
	job := filepath.Join(e.ref, "femnist_k8s.yml")
	return job, os.WriteFile(job, b, 0o644)
}

// extract writes FedScale's fedscale/ (less fedscale/edge), docker/ and
// setup.py at the mirror's HEAD into src, blob by blob, and the commit to
// src/COMMIT last (its presence means a complete extraction).
func extract(ctx context.Context, mirror, src string) error {
	if err := os.RemoveAll(src); err != nil {
		return err
	}
	git := func(args ...string) ([]byte, error) {
		return output(ctx, append([]string{"git", "--git-dir=" + mirror}, args...)...)
	}
	tree, err := git("ls-tree", "-r", "HEAD", "--", "fedscale", "docker", "setup.py")
	if err != nil {
		return err
	}
	for _, e := range parseTree(tree) {
		b, err := git("cat-file", "blob", e.obj)
		if err != nil {
			return err
		}
		dst := filepath.Join(src, filepath.FromSlash(e.path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return err
		}
	}
	commit, err := git("rev-parse", "HEAD")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(src, "COMMIT"), commit, 0o644)
}

type treeEntry struct{ obj, path string }

// parseTree reads `git ls-tree -r` output ("MODE TYPE OBJ\tPATH") and keeps
// the regular files (no symbolic links, no submodules) outside
// fedscale/edge, which the cloud runtime does not use.
func parseTree(out []byte) []treeEntry {
	var keep []treeEntry
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		meta, path, ok := strings.Cut(sc.Text(), "\t")
		f := strings.Fields(meta)
		if !ok || len(f) != 3 || f[1] != "blob" || f[0] == "120000" || strings.HasPrefix(path, "fedscale/edge/") {
			continue
		}
		keep = append(keep, treeEntry{obj: f[2], path: path})
	}
	return keep
}

// buildOurs builds our binaries: from the working tree, or with OURS_REV
// from that commit in a folder of its own, immune to edits in the tree.
func (e *env) buildOurs(ctx context.Context) error {
	if e.oursRev == "" {
		e.bin = filepath.Join(e.root, "bin")
		return command(ctx, "", "make", "-s", "-C", e.root, "build")
	}
	out, err := output(ctx, "git", "-C", e.root, "rev-parse", "--short=12", e.oursRev)
	if err != nil {
		return fmt.Errorf("OURS_REV: %w", err)
	}
	rev := strings.TrimSpace(string(out))
	osrc := filepath.Join(e.ref, "ours-"+rev)
	e.bin = filepath.Join(osrc, "bin")
	if exists(filepath.Join(e.bin, "executor")) {
		return nil
	}
	if err := os.RemoveAll(osrc); err != nil {
		return err
	}
	if err := os.MkdirAll(osrc, 0o755); err != nil {
		return err
	}
	archive := exec.CommandContext(ctx, "git", "-C", e.root, "archive", rev)
	untar := exec.CommandContext(ctx, "tar", "-x", "-C", osrc)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return err
	}
	untar.Stdin, archive.Stderr, untar.Stderr = pipe, os.Stderr, os.Stderr
	if err := untar.Start(); err != nil {
		return err
	}
	if err := archive.Run(); err != nil {
		return fmt.Errorf("git archive %s: %w", rev, err)
	}
	if err := untar.Wait(); err != nil {
		return fmt.Errorf("tar -x -C %s: %w", osrc, err)
	}
	return command(ctx, "", "make", "-s", "-C", osrc, "build", "VERSION="+rev)
}

// timedRun is one measured run: three processes under /usr/bin/time -v.
type timedRun struct {
	dir  string
	cmds []*exec.Cmd
	wall time.Duration
}

func newRun(dir string) (*timedRun, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	return &timedRun{dir: dir}, os.MkdirAll(dir, 0o755)
}

// start starts argv as process name (output in name.out, resources in
// name.time), with extra environment.
func (r *timedRun) start(ctx context.Context, name string, extraEnv []string, argv ...string) error {
	out, err := os.Create(filepath.Join(r.dir, name+".out"))
	if err != nil {
		return err
	}
	defer out.Close() // the child holds its own descriptor
	cmd := exec.CommandContext(ctx, "/usr/bin/time", append([]string{"-v", "-o", filepath.Join(r.dir, name+".time")}, argv...)...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), extraEnv...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	r.cmds = append(r.cmds, cmd)
	return nil
}

// load appends the machine's load averages and whole-machine CPU ticks
// (user nice system idle ...; to compare with the processes' own user+sys
// in *.time): anything else running would skew the times.
func (r *timedRun) load(when string, truncate bool) error {
	avg, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return err
	}
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return err
	}
	cpu, _, _ := strings.Cut(string(stat), "\n")
	flag := os.O_APPEND | os.O_CREATE | os.O_WRONLY
	if truncate {
		flag |= os.O_TRUNC
	}
	for name, line := range map[string]string{"loadavg": when + ": " + strings.TrimSpace(string(avg)), "proc_stat": cpu} {
		f, err := os.OpenFile(filepath.Join(r.dir, name), flag, 0o644)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(f, line)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// job runs the aggregator and 2 executors (executor(rank) is the command
// line of each), all started at once, and waits for them (finish).
func (r *timedRun) job(ctx context.Context, extraEnv, agg []string, executor func(rank string) []string) error {
	if err := r.load("start", true); err != nil {
		return err
	}
	start := time.Now()
	err := r.start(ctx, "aggregator", extraEnv, agg...)
	for rank := 1; rank <= 2 && err == nil; rank++ {
		err = r.start(ctx, "executor"+strconv.Itoa(rank), extraEnv, executor(strconv.Itoa(rank))...)
	}
	if err != nil {
		for _, c := range r.cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
		return err
	}
	return r.finish(start)
}

// finish waits for the aggregator (the wall time ends there), then the
// others, records the load and wall_s, and prints the wall time and each
// process's peak memory.
func (r *timedRun) finish(start time.Time) error {
	errs := []error{r.cmds[0].Wait()}
	r.wall = time.Since(start)
	for _, c := range r.cmds[1:] {
		errs = append(errs, c.Wait())
	}
	if err := r.load("end", false); err != nil {
		return err
	}
	wall := fmt.Sprintf("%.1f", r.wall.Seconds())
	if err := os.WriteFile(filepath.Join(r.dir, "wall_s"), []byte(wall+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Printf("%s: wall %s s\n", filepath.Base(r.dir), wall)
	times, _ := filepath.Glob(filepath.Join(r.dir, "*.time"))
	printLines(times, "Maximum resident", true)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: a process failed (see %s/*.out): %w", filepath.Base(r.dir), r.dir, err)
	}
	return nil
}

// printLines prints the lines of files holding substr (with the file's
// name, as grep -H, when named).
func printLines(files []string, substr string, named bool) {
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, substr) {
				if named {
					l = f + ":" + l
				}
				fmt.Println(l)
			}
		}
	}
}

func (e *env) runFedScale(ctx context.Context, job string) error {
	r, err := newRun(filepath.Join(e.ref, "runs", "fedscale"))
	if err != nil {
		return err
	}
	b, err := os.ReadFile(job)
	if err != nil {
		return err
	}
	flags, err := fedscaleFlags(b)
	if err != nil {
		return fmt.Errorf("%s: %w", job, err)
	}
	flags = append(flags, "--ps_port", strconv.Itoa(e.fsPort))
	src := filepath.Join(e.ref, "src")
	pyEnv := []string{
		"PYTHONPATH=" + filepath.Join(e.root, "scripts", "fedscale-ref", "stubs") + string(os.PathListSeparator) + src,
		// Bytecode caches (if the caller allows them) go to build/, not stubs/.
		"PYTHONPYCACHEPREFIX=" + filepath.Join(e.ref, "pycache"),
	}
	agg := append(append([]string{python, filepath.Join(src, "fedscale", "cloud", "aggregation", "aggregator.py")}, flags...),
		"--this_rank=0", "--num_executors=2", "--executor_configs=localhost:[2]")
	executor := func(rank string) []string {
		return append(append([]string{python, filepath.Join(src, "fedscale", "cloud", "execution", "executor.py")}, flags...),
			"--this_rank="+rank, "--num_executors=2", "--cuda_device=cuda:0")
	}
	if err := r.job(ctx, pyEnv, agg, executor); err != nil {
		return err
	}
	logs, _ := filepath.Glob(filepath.Join(r.dir, "logs", "*", "*", "aggregator", "log"))
	printLines(logs, "FL Testing", false)
	return nil
}

func (e *env) runOurs(ctx context.Context, job string) error {
	r, err := newRun(filepath.Join(e.ref, "runs", "ours"))
	if err != nil {
		return err
	}
	// Plain text on loopback, as FedScale runs.
	common := []string{"--config", job, "--ps-ip", "127.0.0.1", "--ps-port", strconv.Itoa(e.ourPort), "--http-port", "0", "--insecure"}
	agg := append(append([]string{filepath.Join(e.bin, "aggregator")}, common...), "--time-stamp", "ref", "--log-path", r.dir, "--no-resume")
	executor := func(rank string) []string {
		return append(append([]string{filepath.Join(e.bin, "executor")}, common...), "--rank", rank, "--log-path", r.dir)
	}
	if err := r.job(ctx, nil, agg, executor); err != nil {
		return err
	}
	metrics, _ := filepath.Glob(filepath.Join(r.dir, "logs", "*", "ref", "metrics.jsonl"))
	printLines(metrics, `"top_1"`, false)
	return nil
}
