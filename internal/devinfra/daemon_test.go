package devinfra

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain doubles as the daemon the tests start: with
// DEVINFRA_TEST_DAEMON=serve it listens on the unix socket named by its
// first argument until SIGTERM; with =exit it fails at once.
func TestMain(m *testing.M) {
	switch os.Getenv("DEVINFRA_TEST_DAEMON") {
	case "serve":
		l, err := net.Listen("unix", os.Args[1])
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println("serving on", os.Args[1])
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		<-sig
		l.Close()
		os.Exit(0)
	case "exit":
		fmt.Println("boom: bad configuration")
		os.Exit(3)
	}
	os.Exit(m.Run())
}

// testDaemon is this test binary run as a daemon serving a socket in dir.
func testDaemon(t *testing.T, dir, name, mode string) Daemon {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, name+".sock")
	return Daemon{
		Name: name, Tool: exe,
		Args: []string{sock, "--state=" + dir},
		Env:  []string{"DEVINFRA_TEST_DAEMON=" + mode},
		Mark: "--state=" + dir,
		Ready: func(ctx context.Context) error {
			c, err := (&net.Dialer{}).DialContext(ctx, "unix", sock)
			if err == nil {
				c.Close()
			}
			return err
		},
	}
}

func testStack(t *testing.T, ds ...Daemon) *Stack {
	return &Stack{
		State: State{Dir: t.TempDir()}, Daemons: ds, Timeout: 20 * time.Second,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func TestOwnedBy(t *testing.T) {
	bk := Daemon{Tool: "buildkitd", Mark: "--addr unix:///tmp/fedscale-buildkit/buildkitd.sock"}
	etcd := Daemon{Tool: "etcd", Mark: "--data-dir=/tmp/fedscale-kube/etcd"}
	for _, tc := range []struct {
		name string
		argv []string
		d    Daemon
		want bool
	}{
		{"the scripts' buildkitd", []string{"/root/.cache/fedscale-tools/buildkit-v0.34.2/bin/buildkitd", "--config", "/tmp/fedscale-buildkit/buildkitd.toml",
			"--addr", "unix:///tmp/fedscale-buildkit/buildkitd.sock", "--root", "/tmp/fedscale-buildkit/root"}, bk, true},
		{"another buildkitd", []string{"buildkitd", "--addr", "unix:///run/buildkit/buildkitd.sock"}, bk, false},
		{"another binary with our flags", []string{"/usr/bin/sleep", "--addr", "unix:///tmp/fedscale-buildkit/buildkitd.sock"}, bk, false},
		{"our etcd", []string{"/c/etcd-v3.7.0/bin/etcd", "--name=default", "--data-dir=/tmp/fedscale-kube/etcd", "--log-level=warn"}, etcd, true},
		{"mark as a prefix of a longer value", []string{"etcd", "--data-dir=/tmp/fedscale-kube/etcd2"}, etcd, false},
		{"no mark: the name decides", []string{"dockerd"}, Daemon{Tool: "dockerd"}, true},
		{"no mark, other name", []string{"containerd"}, Daemon{Tool: "dockerd"}, false},
		{"empty command line (a kernel thread)", nil, etcd, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ownedBy(tc.argv, tc.d); got != tc.want {
				t.Errorf("ownedBy(%q) = %v, want %v", tc.argv, got, tc.want)
			}
		})
	}
}

func TestPIDOwnership(t *testing.T) {
	st := testStack(t)
	d := testDaemon(t, st.State.Dir, "testd", "serve")
	p, err := st.State.launch(d, d.Tool)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.State.stop(d) })
	// Once serving, the daemon is ours by its pid file and command line
	// (CI once read PID 0 right after the launch: a failure says what the
	// daemon wrote).
	ctx, cancel := context.WithTimeout(context.Background(), st.Timeout)
	defer cancel()
	if err := st.wait(ctx, d.Name, d.Name, d.Ready, []*proc{p}); err != nil {
		log, _ := os.ReadFile(st.State.LogFile(d.Name))
		t.Fatalf("the daemon did not serve: %v; its log:\n%s", err, log)
	}
	if got := st.State.PID(d); got != p.pid {
		log, _ := os.ReadFile(st.State.LogFile(d.Name))
		t.Fatalf("PID = %d, want the launched %d (alive %v, command line %q); its log:\n%s", got, p.pid, alive(p.pid), cmdlineOf(p.pid), log)
	}
	for _, tc := range []struct {
		name, pidFile string
	}{
		{"a reused pid (this test: same binary, no mark)", strconv.Itoa(os.Getpid())},
		{"a pid of nobody", "999999999"},
		{"not a number", "12ab"},
		{"negative", "-4"},
		{"empty", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			other := d
			other.Name = "other"
			if err := os.WriteFile(st.State.pidFile("other"), []byte(tc.pidFile+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := st.State.PID(other); got != 0 {
				t.Errorf("PID with pid file %q = %d, want 0 (not ours)", tc.pidFile, got)
			}
		})
	}
	if err := st.State.stop(d); err != nil {
		t.Fatal(err)
	}
	if st.State.PID(d) != 0 || alive(p.pid) {
		t.Errorf("the daemon still runs after stop")
	}
	if _, err := os.Stat(st.State.pidFile(d.Name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file left after stop: %v", err)
	}
}

// A zombie (exited, not yet reaped by its parent) is not alive, whatever
// kill(pid, 0) says: the daemons' parent after their starter exits is
// PID 1, which may be slow to reap.
func TestAliveZombie(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "exit 0")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for alive(cmd.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatal("an exited, unreaped child still counts as alive")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := syscall.Kill(cmd.Process.Pid, 0); err != nil {
		t.Fatalf("the zombie should still exist for kill(0): %v", err)
	}
	if !alive(os.Getpid()) {
		t.Error("this process is not alive")
	}
}

func TestLock(t *testing.T) {
	s := State{Dir: filepath.Join(t.TempDir(), "state")} // Lock makes the folder
	unlock, err := s.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := s.Lock(ctx); err == nil || !strings.Contains(err.Error(), ".lock") {
		t.Fatalf("a second Lock while held: %v, want a timeout naming the lock", err)
	}
	got := make(chan error, 1)
	go func() {
		u, err := s.Lock(context.Background())
		if err == nil {
			u()
		}
		got <- err
	}()
	time.Sleep(200 * time.Millisecond)
	unlock()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a waiting Lock did not get the lock once released")
	}
}

// A daemon started through a prefix that execs it (as nsenter does for the
// swarm's engines) is the same process: its pid and command line are the
// daemon's own.
func TestStackStartHealthyStop(t *testing.T) {
	for _, prefix := range [][]string{nil, {"env"}} {
		t.Run(fmt.Sprint(prefix), func(t *testing.T) { testStartHealthyStop(t, prefix) })
	}
}

func testStartHealthyStop(t *testing.T, prefix []string) {
	st := testStack(t)
	d := testDaemon(t, st.State.Dir, "testd", "serve")
	d.Prefix = prefix
	st.Daemons = []Daemon{d}
	if err := st.Healthy(context.Background()); err == nil {
		t.Fatal("Healthy before start")
	}
	paths, err := st.Paths(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Start(context.Background(), paths); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Stop() })
	if err := st.Healthy(context.Background()); err != nil {
		t.Fatalf("Healthy after start: %v", err)
	}
	if lines, ok := st.Status(); !ok || !strings.HasPrefix(lines[0], "testd running (pid ") {
		t.Errorf("Status = %q, %v", lines, ok)
	}
	log, _ := os.ReadFile(st.State.LogFile(d.Name))
	if !strings.Contains(string(log), "==== ") || !strings.Contains(string(log), "serving on") {
		t.Errorf("log lacks the start header or the daemon's output:\n%s", log)
	}
	if err := st.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := st.Healthy(context.Background()); err == nil {
		t.Fatal("Healthy after stop")
	}
	if st.Leftovers() {
		t.Error("pid files left after stop")
	}
}

func TestStackStartFailure(t *testing.T) {
	st := testStack(t)
	good := testDaemon(t, st.State.Dir, "testd", "serve")
	bad := testDaemon(t, st.State.Dir, "bad", "exit")
	good.Await = true
	st.Daemons = []Daemon{good, bad}
	var logs strings.Builder
	st.Log = slog.New(slog.NewTextHandler(&logs, nil))
	paths, err := st.Paths(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	err = st.Start(context.Background(), paths)
	if err == nil || !strings.Contains(err.Error(), "bad exited during start-up") {
		t.Fatalf("Start = %v, want bad's exit", err)
	}
	if !strings.Contains(logs.String(), "boom: bad configuration") {
		t.Errorf("the failing daemon's log was not shown: %s", logs.String())
	}
	if st.Leftovers() || st.State.PID(good) != 0 {
		t.Error("a failed start left daemons or pid files behind")
	}
}

func TestStackStartTimeout(t *testing.T) {
	st := testStack(t)
	d := testDaemon(t, st.State.Dir, "testd", "serve")
	d.Ready = func(context.Context) error { return errors.New("never") }
	st.Daemons, st.Timeout = []Daemon{d}, 500*time.Millisecond
	paths, err := st.Paths(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Start(context.Background(), paths); err == nil || !strings.Contains(err.Error(), "not ready after 500ms: never") {
		t.Fatalf("Start = %v, want a timeout", err)
	}
	if st.Leftovers() {
		t.Error("a timed-out start left pid files")
	}
}

// Up reuses a healthy stack, and replaces one whose daemon died.
func TestStackUp(t *testing.T) {
	st := testStack(t)
	d := testDaemon(t, st.State.Dir, "testd", "serve")
	st.Daemons = []Daemon{d}
	prepared := 0
	prepare := func(context.Context) error { prepared++; return nil }
	t.Cleanup(func() { _ = st.Down(context.Background()) })
	for i, want := range []bool{true, false} {
		started, err := st.Up(context.Background(), prepare)
		if err != nil || started != want {
			t.Fatalf("Up %d = %v, %v; want started=%v", i, started, err, want)
		}
	}
	pid := st.State.PID(d)
	if prepared != 1 || pid == 0 {
		t.Fatalf("prepared %d times, pid %d", prepared, pid)
	}
	// The daemon dies behind the stack's back (its pid file stays).
	if err := terminate(pid); err != nil {
		t.Fatal(err)
	}
	started, err := st.Up(context.Background(), prepare)
	if err != nil || !started || st.State.PID(d) == 0 || st.State.PID(d) == pid {
		t.Fatalf("Up after the daemon died = %v, %v (pid %d, was %d)", started, err, st.State.PID(d), pid)
	}
	if err := st.Down(context.Background(), filepath.Join(st.State.Dir, "d.sock")); err != nil {
		t.Fatal(err)
	}
	if st.Leftovers() {
		t.Error("pid files after Down")
	}
}

// cmdlineOf is pid's command line, for messages.
func cmdlineOf(pid int) []string {
	argv, _ := cmdline(pid)
	return argv
}
