package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
)

// SuperviseEnv marks a process started as a supervisor: the launcher binary
// re-executes itself with this variable set, and main calls MaybeSupervise
// first thing. The supervisor runs one runtime process, forwards SIGTERM and
// SIGINT to it, and records its exit status in a file, so `status` can report
// exit codes faithfully after the launcher that started the job has exited.
const SuperviseEnv = "FEDSCALE_LAUNCHER_SUPERVISE"

// Exit is what a supervisor records when its process ends.
type Exit struct {
	Code   int    `json:"exitCode"`
	Signal string `json:"signal,omitempty"`
}

type superviseArgs struct {
	ExitFile string   `json:"exitFile"`
	LogFile  string   `json:"logFile"`
	Dir      string   `json:"dir"`
	Argv     []string `json:"argv"`
	// Lock: descriptor lockFD is the process's lock, held (lock.go).
	Lock bool `json:"lock,omitempty"`
}

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

func supervise(a superviseArgs) int {
	logf, err := os.OpenFile(a.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return record(a.ExitFile, Exit{Code: 127, Signal: "log: " + err.Error()})
	}
	defer logf.Close()
	cmd := exec.Command(a.Argv[0], a.Argv[1:]...)
	cmd.Dir = a.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = without(os.Environ(), SuperviseEnv)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(logf, "launcher: cannot start %s: %v\n", a.Argv[0], err)
		return record(a.ExitFile, Exit{Code: 127})
	}
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	err = cmd.Wait()
	e := Exit{}
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
	return record(a.ExitFile, e)
}

// record writes the exit file atomically and returns the code to exit with.
func record(path string, e Exit) int {
	data, _ := json.Marshal(e)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err == nil {
		_ = os.Rename(tmp, path)
	}
	return e.Code
}

func readExit(path string) (*Exit, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var e Exit
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return &e, nil
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
