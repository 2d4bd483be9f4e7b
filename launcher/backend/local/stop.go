package local

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// Delete ends the job's processes (SIGTERM to each supervisor's process
// group, SIGKILL after a grace period) and removes its state folder. Logs
// stay. When ctx ends first, the state stays (a later stop finishes) and
// the error names the processes still running.
func (b *Backend) Delete(ctx context.Context, name string) error {
	st, err := b.readState(name)
	if err != nil {
		return err
	}
	if err := b.kill(ctx, st); err != nil {
		return fmt.Errorf("job %s: stopping: %w", name, err)
	}
	if err := os.RemoveAll(b.dir(name)); err != nil {
		return fmt.Errorf("local backend: %w", err)
	}
	return nil
}

const grace = 10 * time.Second

// kill ends st's processes, or gives up when ctx ends, naming those left.
func (b *Backend) kill(ctx context.Context, st *state) error {
	var live []procState
	for _, p := range st.Processes {
		if alive(p) {
			_ = syscall.Kill(-p.Pid, syscall.SIGTERM)
			live = append(live, p)
		}
	}
	deadline := time.Now().Add(grace)
	for len(live) > 0 {
		var still []procState
		for _, p := range live {
			if alive(p) {
				still = append(still, p)
			}
		}
		live = still
		if len(live) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, p := range live {
				_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
			}
			deadline = time.Now().Add(grace)
		}
		select {
		case <-ctx.Done():
			var names []string
			for _, p := range live {
				names = append(names, fmt.Sprintf("%s (pid %d)", p.Name, p.Pid))
			}
			return fmt.Errorf("%w; still running: %s", context.Cause(ctx), strings.Join(names, ", "))
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}
