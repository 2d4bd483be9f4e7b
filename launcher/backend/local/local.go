// Package local is the launcher backend that runs a job as processes of this
// machine: one aggregator and N executors from the runtime's binaries, each
// under a small supervisor (this launcher binary, re-executed) that records
// its exit status. No Docker or cluster is needed; it is what `make demo`
// style runs and laptops use.
//
// The files: state.go (a job's folder), submit.go (Plan, Create),
// status.go (probes, Look), wait.go (Watch), logs.go (OpenLog), stop.go
// (Delete), supervise.go (the supervisor), lock.go (a supervisor's
// liveness: a flock it holds, so nothing reads /proc and macOS works).
//
// A job's state is a folder under the state directory holding the job file
// the processes read, the supervisors' pids and their exit files. The
// processes' output goes to {log_path}/logs/{job_name}/launcher/, beside the
// runtime's own FedScale logs, and is kept after stop.
package local

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/job"
)

// Options configures the backend.
type Options struct {
	// StateDir holds one folder per job. Default: $FEDSCALE_LAUNCHER_STATE,
	// else $XDG_STATE_HOME/fedscale/launcher, else ~/.local/state/fedscale/launcher.
	StateDir string
	// BinDir holds the aggregator and executor binaries. Default: the folder
	// of this executable when it has them, else $PATH.
	BinDir string
	// Self is the executable re-run as supervisor (it must call
	// MaybeSupervise first thing). Default: os.Executable().
	Self string
	// Poll is how often Wait and follow-mode Logs look again (default 100ms):
	// local processes have no event stream to watch.
	Poll time.Duration
	// Log receives Wait's warnings (an executor that died while the job
	// goes on); nil discards them.
	Log *slog.Logger
}

// Backend runs jobs as local processes: the primitives here, the rest of
// the lifecycle from backend.Lifecycle.
type Backend struct {
	*backend.Lifecycle
	opts Options
}

var _ backend.Provider = (*Backend)(nil)

// New checks the options and fills in defaults.
func New(opts Options) (*Backend, error) {
	if opts.StateDir == "" {
		opts.StateDir = defaultStateDir()
	}
	if opts.Self == "" {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("local backend: finding this executable: %w", err)
		}
		opts.Self = self
	}
	if opts.Poll <= 0 {
		opts.Poll = 100 * time.Millisecond
	}
	b := &Backend{opts: opts}
	b.Lifecycle = backend.NewLifecycle(b, backend.LifecycleOptions{Log: opts.Log})
	return b, nil
}

func defaultStateDir() string {
	if d := os.Getenv("FEDSCALE_LAUNCHER_STATE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "fedscale", "launcher")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "fedscale-launcher")
	}
	return filepath.Join(home, ".local", "state", "fedscale", "launcher")
}

// Name is "local".
func (b *Backend) Name() string { return job.BackendLocal }
