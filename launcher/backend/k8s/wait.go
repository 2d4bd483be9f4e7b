package k8s

import (
	"context"
	"fmt"
	"strings"

	"github.com/fedscale/fedscale-go/launcher/backend"
)

// Wait follows the job's pods and Jobs by watch (one List and one Watch
// each, see follower) until it reaches until: for UntilRunning, the
// aggregator pod and every executor pod Running (and Ready where the pod
// reports conditions); for UntilDone, the aggregator Job complete. A failed
// process (beyond its retries) is an error naming it.
func (b *Backend) Wait(ctx context.Context, name string, until backend.Until) (backend.Status, error) {
	if err := b.validName(name); err != nil {
		return backend.Status{}, err
	}
	f, err := b.follow(ctx, selector(name), followJobs|followPods)
	if err != nil {
		return backend.Status{}, err
	}
	defer f.stop()
	if len(f.jobs()) == 0 {
		return backend.Status{}, backend.NotFound(name, b.where())
	}
	var last backend.Status
	for {
		jobs := f.jobs()
		if len(jobs) == 0 {
			return last, fmt.Errorf("job %q: %w: it was removed while waiting (stopped elsewhere?)", name, backend.ErrNotFound)
		}
		last = computeStatus(name, jobs, f.pods())
		if err := failure(last); err != nil {
			return last, err
		}
		switch until {
		case backend.UntilRunning:
			if last.Phase == backend.Succeeded || allReady(last) {
				return last, nil
			}
		case backend.UntilDone:
			if last.Phase == backend.Succeeded {
				return last, nil
			}
		}
		if err := f.next(ctx); err != nil {
			if ctx.Err() != nil {
				return last, fmt.Errorf("job %s: waiting until %s: %w (%s)", name, untilName(until), err, describe(last))
			}
			return last, err
		}
	}
}

func untilName(u backend.Until) string {
	if u == backend.UntilDone {
		return "done"
	}
	return "running"
}

// describe summarises a status for an error: the phase and the first
// process that holds things up.
func describe(s backend.Status) string {
	counts := map[backend.Phase]int{}
	var first string
	for _, p := range s.Processes {
		counts[p.Phase]++
		if first == "" && !(p.Phase == backend.Running && p.Ready) && p.Phase != backend.Succeeded {
			first = p.Name + " " + strings.ToLower(string(p.Phase))
			if p.Phase == backend.Running {
				first += ", not ready"
			}
			if p.Message != "" {
				first += ": " + p.Message
			}
		}
	}
	out := fmt.Sprintf("phase %s: %d running, %d pending", s.Phase, counts[backend.Running], counts[backend.Pending])
	if first != "" {
		out += "; " + first
	}
	return out
}

func allReady(s backend.Status) bool {
	for _, p := range s.Processes {
		if !(p.Phase == backend.Running && p.Ready) && p.Phase != backend.Succeeded {
			return false
		}
	}
	return len(s.Processes) > 0
}

// failure names the first failed process.
func failure(s backend.Status) error {
	for _, p := range s.Processes {
		if p.Phase == backend.Failed {
			return fmt.Errorf("job %s: %s failed: %s", s.Job, p.Name, p.Message)
		}
	}
	return nil
}
