package main

import (
	"context"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/cmd/cli"
)

// logRequest is what `launcher logs` was asked for.
type logRequest struct {
	process    string // "" for every process
	follow     bool
	tail       int       // the last lines of each process; -1 for all
	since      time.Time // zero for all
	timestamps bool
	now        time.Time // for the year of FedScale lines, which have none
}

func logsCommand(g *globals, stdout io.Writer) *cobra.Command {
	var (
		r     logRequest
		since string
	)
	cmd := &cobra.Command{
		Use:   "logs JOB",
		Short: "Print a job's output: every process's merged by time, or one process's",
		Long: `logs prints the output of a job's processes, each line prefixed with its
process ([aggregator], [executor-1], ...) and all of them merged by time; with
--component, one process's lines as they are. The times come from the backend
where it records them (Docker and Kubernetes, in nanoseconds); local processes'
lines are timed by their FedScale time stamp ("(MM-DD) HH:MM:SS", whole seconds,
this machine's time zone), and a line without one (a continued message, a
panic's trace) takes the time of the line before it. With --follow, the lines
so far are printed merged, then new lines as they come.`,
		Example: `  launcher logs femnist                          # every process, merged by time
  launcher logs femnist --component executor-1 -f
  launcher logs femnist --tail 20 --timestamps   # the last 20 lines of each process, with their times
  launcher logs femnist --since 10m              # the last ten minutes
  launcher logs femnist --since 2026-11-25T22:30:00Z`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: g.completeJobs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r.now = time.Now()
			if r.tail < -1 {
				return cli.Usagef("--tail %d: want a number of lines, or -1 for all", r.tail)
			}
			var err error
			if r.since, err = parseSince(since, r.now); err != nil {
				return err
			}
			return g.onJob(func(ctx context.Context, b backend.Backend, name string) error {
				return showLogs(ctx, b, name, r, stdout)
			})(cmd, args)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&r.follow, "follow", "f", false, "keep printing new lines until the processes exit")
	f.StringVar(&r.process, "component", "", "one process: aggregator or executor-N (default: every process, each line prefixed)")
	f.IntVar(&r.tail, "tail", -1, "lines to show from the end of each process's output (-1: all)")
	f.StringVar(&since, "since", "", "only lines from this long ago (10m, 1h30m) or from this time (RFC 3339)")
	f.BoolVar(&r.timestamps, "timestamps", false, "start each line with its time (RFC 3339)")
	if err := cmd.RegisterFlagCompletionFunc("component", g.completeProcesses); err != nil {
		panic(err) // an unknown flag: a programming error every test catches
	}
	return cmd
}

// parseSince reads --since: a duration back from now, or a time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, cli.Usagef("--since %s: want a duration back from now (10m), not a negative one", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, cli.Usagef("--since %q: want a duration (10m, 1h30m) or an RFC 3339 time (2026-11-25T22:30:00Z)", s)
}

// showLogs prints the history r selects, merged by time, then with
// r.follow the new lines as the backend passes them on. The backend is
// always asked for its time stamps; they are printed only with
// r.timestamps.
func showLogs(ctx context.Context, b backend.Backend, name string, r logRequest, w io.Writer) error {
	prefix := r.process == ""
	p := newLineParser(r.process, r.now)
	// One process's whole output needs no merging: it streams.
	stream := r.process != "" && r.tail < 0
	keep := r.tail
	if stream {
		keep = 0
	}
	h := newHistory(keep, r.since)
	// A follow without exact stamps skips what the history received by
	// count, so the history must count from each output's start.
	lo := backend.LogOptions{Process: r.process, Timestamps: true, Since: r.since, FromStart: r.follow}
	if r.tail >= 0 {
		lo.Tail = max(r.tail, 1) // at least one: the follow below starts after it
	}
	lw := &lineWriter{emit: func(raw string) error {
		l := p.parse(raw)
		if err := h.add(l); err != nil {
			return err
		}
		if stream && !before(l, r.since) {
			_, err := io.WriteString(w, l.format(prefix, r.timestamps))
			return err
		}
		return nil
	}}
	err := b.Logs(ctx, name, lo, lw)
	if cerr := lw.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := printLines(w, h.merged(), prefix, r.timestamps); err != nil {
		return err
	}
	if !r.follow || ctx.Err() != nil {
		return nil
	}
	d := dedup{h: h, skipped: map[string]int{}}
	lo = backend.LogOptions{Process: r.process, Follow: true, Timestamps: true, Since: d.since()}
	lw = &lineWriter{emit: func(raw string) error {
		l := p.parse(raw)
		if d.old(l) || before(l, r.since) {
			return nil
		}
		_, err := io.WriteString(w, l.format(prefix, r.timestamps))
		return err
	}}
	err = b.Logs(ctx, name, lo, lw)
	if cerr := lw.close(); err == nil {
		err = cerr
	}
	return err
}

// before says l is older than since (a line of unknown time is not).
func before(l logLine, since time.Time) bool {
	return !since.IsZero() && !l.t.IsZero() && l.t.Before(since)
}

// dedup drops from the follow the lines the history already had. Where
// the backend stamps lines exactly (Docker, Kubernetes), the follow starts
// at the oldest of the processes' last lines and drops each process's
// lines up to its own last one; a backend without stamps (local
// processes) gives each process's output from its beginning again, and
// the lines already received are skipped by count (the history asked for
// the whole output, LogOptions.FromStart, so the counts start there too).
type dedup struct {
	h       *history
	skipped map[string]int
}

func (d *dedup) since() time.Time {
	var t time.Time
	for _, l := range d.h.last {
		if !l.exact {
			return time.Time{}
		}
		if t.IsZero() || l.t.Before(t) {
			t = l.t
		}
	}
	return t
}

func (d *dedup) old(l logLine) bool {
	last, ok := d.h.last[l.proc]
	switch {
	case !ok:
		return false
	case last.exact && l.exact:
		return !l.t.After(last.t)
	case d.skipped[l.proc] < d.h.recv[l.proc]:
		d.skipped[l.proc]++
		return true
	}
	return false
}
