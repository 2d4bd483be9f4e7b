package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/fedscale/fedscale-go/runtime/health"
)

// SuperviseEnv marks a process started as a supervisor: the launcher binary
// re-executes itself with this variable set, and main calls MaybeSupervise
// first thing. The supervisor runs one runtime process, forwards SIGTERM and
// SIGINT to it, starts it again after a failure when the job asks for
// restarts (recording each in a file), and records its exit status in a
// file, so `status` can report restarts and exit codes faithfully after the
// launcher that started the job has exited.
const SuperviseEnv = "FEDSCALE_LAUNCHER_SUPERVISE"

// Exit is what a supervisor records when its process ends.
type Exit struct {
	Code   int    `json:"exitCode"`
	Signal string `json:"signal,omitempty"`
}

// restartRecord is what a supervisor records each time its process failed
// and is to be started again.
type restartRecord struct {
	Count int  `json:"count"` // restarts so far, this one included
	Last  Exit `json:"last"`  // how the attempt before it ended
	// Waiting: in the backoff before the restart; the process is not
	// running.
	Waiting bool `json:"waiting,omitempty"`
}

type superviseArgs struct {
	ExitFile string   `json:"exitFile"`
	LogFile  string   `json:"logFile"`
	Dir      string   `json:"dir"`
	Argv     []string `json:"argv"`
	// Lock: descriptor lockFD is the process's lock, held (lock.go).
	Lock bool `json:"lock,omitempty"`
	// MaxRestarts: how often a failed process is started again
	// (job.Spec.ExecutorRestarts); each restart is recorded in RestartFile.
	MaxRestarts int    `json:"maxRestarts,omitempty"`
	RestartFile string `json:"restartFile,omitempty"`
}

// Backoff before a restart: restartFirst, doubled each time up to
// restartMax, as the kubelet and the Docker engine back off.
const (
	restartFirst = time.Second
	restartMax   = 30 * time.Second
)

// MaybeSupervise runs the supervisor and exits when this process was started
// as one; otherwise it returns at once.
func MaybeSupervise() {
	spec := os.Getenv(SuperviseEnv)
	if spec == "" {
		return
	}
	var a superviseArgs
	if err := json.Unmarshal([]byte(spec), &a); err != nil || len(a.Argv) == 0 {
		fmt.Fprintf(os.Stderr, "launcher supervisor: bad %s: %v\n", SuperviseEnv, err)
		os.Exit(2)
	}
	var lock *os.File
	if a.Lock {
		lock = inheritedLock()
	}
	code := supervise(a)
	runtime.KeepAlive(lock) // held until the exit itself
	os.Exit(code)
}

// child is the supervised process of the moment and whether the
// supervisor was told to stop: a stop signal reaches the running process,
// and no process starts after it.
type child struct {
	mu      sync.Mutex
	proc    *os.Process
	stopped bool
	stop    chan struct{} // closed at the first stop signal
}

func (c *child) signal(s os.Signal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.stopped {
		c.stopped = true
		close(c.stop)
	}
	if c.proc != nil {
		_ = c.proc.Signal(s)
	}
}

// start starts cmd unless a stop signal came first (then ok is false).
func (c *child) start(cmd *exec.Cmd) (ok bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return false, nil
	}
	if err := cmd.Start(); err != nil {
		return false, err
	}
	c.proc = cmd.Process
	return true, nil
}

func supervise(a superviseArgs) int {
	logf, err := os.OpenFile(a.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return record(a.ExitFile, Exit{Code: 127, Signal: "log: " + err.Error()})
	}
	defer logf.Close()
	c := &child{stop: make(chan struct{})}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		for s := range sigs {
			c.signal(s)
		}
	}()
	delay := restartFirst
	for restarts := 0; ; restarts++ {
		e, ran := run(a, c, logf)
		if !ran || e.Code == 0 || e.Code == health.ExitJobStopped || restarts >= a.MaxRestarts {
			return record(a.ExitFile, e)
		}
		r := restartRecord{Count: restarts + 1, Last: e, Waiting: true}
		writeJSON(a.RestartFile, r)
		// A stop signals the whole process group: the signal that ended the
		// process reaches the supervisor too, well within the backoff.
		select {
		case <-c.stop:
			return record(a.ExitFile, e)
		case <-time.After(delay):
		}
		fmt.Fprintf(logf, "launcher: %s ended with %s; started again after %s (restart %d of %d)\n",
			filepath.Base(a.Argv[0]), exitMessage(e), delay, r.Count, a.MaxRestarts)
		delay = min(2*delay, restartMax)
		r.Waiting = false
		writeJSON(a.RestartFile, r)
	}
}

// run runs the process once. ran is false when it did not start (a stop
// signal came first, or the binary cannot run): nothing to restart.
func run(a superviseArgs, c *child, logf *os.File) (e Exit, ran bool) {
	cmd := exec.Command(a.Argv[0], a.Argv[1:]...)
	cmd.Dir = a.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = without(os.Environ(), SuperviseEnv)
	ok, err := c.start(cmd)
	if err != nil {
		fmt.Fprintf(logf, "launcher: cannot start %s: %v\n", a.Argv[0], err)
		return Exit{Code: 127}, false
	}
	if !ok {
		return Exit{Code: 128 + int(syscall.SIGTERM), Signal: "stopped before a restart"}, false
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			e.Code, e.Signal = 128+int(ws.Signal()), ws.Signal().String()
		} else {
			e.Code = ee.ExitCode()
		}
	} else if err != nil {
		e.Code = 127
	}
	return e, true
}

// exitMessage is how an exit reads in a log line.
func exitMessage(e Exit) string {
	if e.Signal != "" {
		return fmt.Sprintf("exit code %d (%s)", e.Code, e.Signal)
	}
	return fmt.Sprintf("exit code %d", e.Code)
}

// record writes the exit file and returns the code to exit with.
func record(path string, e Exit) int {
	writeJSON(path, e)
	return e.Code
}

// writeJSON replaces path's content with v's JSON atomically (readers see
// the old or the new, never half), path "" writes nothing. A supervisor has
// no one to report a failed write to; status then reads the older file.
func writeJSON(path string, v any) {
	if path == "" {
		return
	}
	data, err := json.Marshal(v)
	if err != nil {
		return
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err == nil {
		_ = os.Rename(tmp, path)
	}
}

func readExit(path string) (*Exit, error) {
	var e Exit
	return &e, readJSON(path, &e)
}

// readRestarts reads a restart file; none (no restart yet, or state from
// before restarts) is zero restarts.
func readRestarts(path string) restartRecord {
	var r restartRecord
	if path != "" {
		_ = readJSON(path, &r)
	}
	return r
}

// maxStateFileBytes bounds what is read of a supervisor's small JSON files.
const maxStateFileBytes = 64 << 10

func readJSON(path string, v any) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxStateFileBytes))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return nil
}

func without(env []string, key string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if len(kv) > len(key) && kv[:len(key)+1] == key+"=" {
			continue
		}
		out = append(out, kv)
	}
	return out
}
