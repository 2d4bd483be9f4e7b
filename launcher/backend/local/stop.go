package local

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"
)

// Delete ends the job's processes (SIGTERM to each supervisor's process
// group, SIGKILL after a grace period) and removes its state folder. Logs
// stay.
func (b *Backend) Delete(ctx context.Context, name string) error {
	st, err := b.readState(name)
	if err != nil {
		return err
	}
	if err := b.kill(st); err != nil {
		return err
	}
	if err := os.RemoveAll(b.dir(name)); err != nil {
		return fmt.Errorf("local backend: %w", err)
	}
	return nil
}

const grace = 10 * time.Second

func (b *Backend) kill(st *state) error {
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
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}
