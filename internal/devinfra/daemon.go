package devinfra

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Probe reports nil once a daemon (or what it manages) serves.
type Probe func(ctx context.Context) error

// Daemon is one host process of a Stack: a table entry.
type Daemon struct {
	// Name names its pid file (<Name>.pid) and log (<Name>.log).
	Name string
	// Tool is a tool of the Toolbox's table (built and cached), a command
	// on PATH, or a path to a binary.
	Tool string
	Args []string
	// Prefix is a command that execs Tool with Args in the same process
	// (e.g. nsenter --net=PATH): the pid and command line checked later are
	// Tool's.
	Prefix []string
	// Env holds KEY=VALUE pairs added to the caller's environment.
	Env []string
	// Mark is an argument, or several joined by single spaces, that only
	// our instance of Tool is started with (a flag naming the state
	// folder): with the binary's name it tells our daemon from a process
	// that took over a stale pid file's pid. Empty: the name alone.
	Mark string
	// Ready reports whether the daemon serves; nil: running is enough.
	// It decides both the end of a start and whether a running stack is
	// healthy enough to reuse.
	Ready Probe
	// Await makes Start wait for Ready before launching the next daemon.
	Await bool
	// Then runs once the daemon is launched (and awaited): e.g. creating
	// the objects it manages.
	Then func(ctx context.Context) error
}

// State is a state folder: each daemon's pid file and log, and the lock
// that serialises starts and stops (two concurrent starts launch one
// daemon: the second waits, then finds it running).
type State struct{ Dir string }

func (s State) pidFile(name string) string { return filepath.Join(s.Dir, name+".pid") }

// LogFile is where a daemon's output goes (appended, one header per start).
func (s State) LogFile(name string) string { return filepath.Join(s.Dir, name+".log") }

// lockWait bounds the wait for a lock: the holder may be building the
// binaries (minutes, cold).
const lockWait = 30 * time.Minute

// Lock takes the folder's lock (flock on <Dir>/.lock, the lock the shell
// scripts took too), creating the folder. Call the returned func to
// release it.
func (s State) Lock(ctx context.Context) (func(), error) {
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return nil, err
	}
	return lockFile(ctx, filepath.Join(s.Dir, ".lock"))
}

// lockFile takes an exclusive flock on path, polling until ctx ends or
// lockWait passes. Closing the file releases the lock, so a daemon that
// inherited it would hold it for its whole life: Go opens files
// close-on-exec, and launch passes on only the log.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, lockWait)
	defer cancel()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for the lock %s: %w", path, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// PID is the pid of our running instance of d, from its pid file, or 0
// when the file is missing, holds no pid, or its process is gone, a zombie,
// or not ours (pid numbers wrap within minutes on a busy machine).
func (s State) PID(d Daemon) int {
	b, err := os.ReadFile(s.pidFile(d.Name))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	if !alive(pid) || !ours(pid, d) {
		return 0
	}
	return pid
}

// ours: pid runs d's binary with d's Mark among its arguments.
func ours(pid int, d Daemon) bool {
	argv, ok := cmdline(pid)
	return ok && ownedBy(argv, d)
}

// cmdline is pid's command line.
func cmdline(pid int) ([]string, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return nil, false
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00"), true
}

// ownedBy is ours on a command line: argv[0] names d's binary and the
// arguments hold d.Mark as whole words.
func ownedBy(argv []string, d Daemon) bool {
	if len(argv) == 0 || filepath.Base(argv[0]) != filepath.Base(d.Tool) {
		return false
	}
	if d.Mark == "" {
		return true
	}
	return strings.Contains(" "+strings.Join(argv[1:], " ")+" ", " "+d.Mark+" ")
}

// alive: the process exists and has not exited. Daemons are reparented to
// PID 1 once their starter exits, which may take a while to reap them: a
// zombie has exited, whatever kill(pid, 0) says.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// "pid (comm) S ...": comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] != 'Z'
}

// proc is a daemon this process launched; done closes once it has exited
// (and been reaped).
type proc struct {
	d    Daemon
	pid  int
	done chan struct{}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// launch starts d (Tool already resolved to path) in its own session, so a
// Ctrl-C or hangup aimed at the caller's terminal does not take it down,
// with stdin from /dev/null and its output appended to its log, and writes
// its pid file.
func (s State) launch(d Daemon, path string) (*proc, error) {
	logf, err := os.OpenFile(s.LogFile(d.Name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own copy
	fmt.Fprintf(logf, "==== %s start\n", time.Now().UTC().Format(time.RFC3339))
	argv := append(append(append([]string{}, d.Prefix...), path), d.Args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), d.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", d.Name, err)
	}
	p := &proc{d: d, pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	if err := writeFileAtomic(s.pidFile(d.Name), []byte(strconv.Itoa(p.pid)+"\n"), 0o644); err != nil {
		_ = cmd.Process.Kill()
		return nil, err
	}
	return p, nil
}

// Grace periods of stop: daemons shut down gracefully on SIGTERM well
// within termGrace; then SIGKILL.
const (
	termGrace = 10 * time.Second
	killGrace = 5 * time.Second
)

// stop ends our running instance of d, if any, and removes its pid file.
func (s State) stop(d Daemon) error {
	if pid := s.PID(d); pid != 0 {
		if err := terminate(pid); err != nil {
			return fmt.Errorf("%s (pid %d): %w", d.Name, pid, err)
		}
	}
	if err := os.Remove(s.pidFile(d.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// terminate sends SIGTERM, then SIGKILL after termGrace, and waits for the
// process to be gone.
func terminate(pid int) error {
	for _, step := range []struct {
		sig   syscall.Signal
		grace time.Duration
	}{{syscall.SIGTERM, termGrace}, {syscall.SIGKILL, killGrace}} {
		if err := syscall.Kill(pid, step.sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return err
		}
		for end := time.Now().Add(step.grace); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			if !alive(pid) {
				return nil
			}
		}
	}
	return errors.New("did not exit")
}

// tail returns the last n lines of a log file, for start-up errors.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	// The last 16 KiB hold n lines of any daemon's log we care about.
	const window = 16 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > window {
		if _, err := f.Seek(-window, io.SeekEnd); err != nil {
			return ""
		}
	}
	b, err := io.ReadAll(io.LimitReader(f, window))
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// writeFileAtomic writes data to path by renaming a temporary file beside
// it, so readers never see half a file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		return err
	}
	if err := os.Chmod(tmp, perm); err != nil { // WriteFile keeps an existing file's mode
		return err
	}
	return os.Rename(tmp, path)
}
