package local

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/fedscale/fedscale-go/runtime/aggregator"
	"github.com/fedscale/fedscale-go/runtime/config"
	"github.com/fedscale/fedscale-go/runtime/health"
	"github.com/fedscale/fedscale-go/runtime/jobapi"
)

// TestMetricsSourceLive: a running aggregator's job document (a real
// aggregator, waiting for its executors) is read through its health port
// when the port answers for this job, and only then; the log folder
// always comes along.
func TestMetricsSourceLive(t *testing.T) {
	t.Setenv(health.InstanceEnv, "mine/0123")
	c := config.Default()
	c.JobName, c.Model, c.LogPath, c.TimeStamp, c.Rounds = "live", "logistic", t.TempDir(), "run1", 3
	agg, err := aggregator.New(aggregator.Options{Conf: c, Executors: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _, _ = agg.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-agg.Ready()
	hs, err := health.Listen("127.0.0.1:0", nil, health.Route{Pattern: jobapi.Path, Handler: agg.JobHandler()})
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()
	_, port, _ := net.SplitHostPort(hs.Addr())
	p := procState{Name: "aggregator", Pid: os.Getpid(), ExitFile: filepath.Join(t.TempDir(), "aggregator.exit"),
		LockFile: filepath.Join(t.TempDir(), "aggregator.lock")}
	p.HealthPort, _ = strconv.Atoi(port)
	lock, err := lockFile(p.LockFile) // the process runs: its lock is held
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()

	stateDir := t.TempDir()
	b, err := New(Options{StateDir: stateDir})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		instance string
		live     bool
	}{
		{"mine/0123", true},
		{"other/4567", false}, // another job's aggregator on the port
	} {
		st := &state{Name: "live", Instance: tc.instance, LogDir: filepath.Join(c.LogPath, "logs", "live"), Processes: []procState{p}}
		if err := os.MkdirAll(b.dir("live"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := writeState(b.dir("live"), st); err != nil {
			t.Fatal(err)
		}
		src, err := b.MetricsSource(ctx, "live")
		if err != nil {
			t.Fatal(err)
		}
		if src.LogDir != st.LogDir || (src.Document != nil) != tc.live {
			t.Fatalf("instance %s: %+v, want the log folder and a document: %v", tc.instance, src, tc.live)
		}
		if tc.live && (src.Document.Job != "live" || src.Document.State != jobapi.StateWaiting || src.Document.Rounds != 3) {
			t.Errorf("document %+v", src.Document)
		}
	}
	if _, err := b.MetricsSource(ctx, "nosuchjob"); err == nil {
		t.Error("an unknown job: no error")
	}
}
