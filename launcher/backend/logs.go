package backend

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
)

// Logs writes the job's output to w: one process's as it is, or (o.Process
// "") every process's, each line prefixed "[executor-1] ". Not following,
// processes are written one after the other, aggregator first; following,
// whole lines interleave as they come, until every process has ended or
// ctx ends (which is not an error).
func (l *Lifecycle) Logs(ctx context.Context, name string, o LogOptions, w io.Writer) error {
	st, err := l.p.Look(ctx, name, false)
	if err != nil {
		return err
	}
	var procs []ProcessStatus
	var names []string
	for _, p := range st.Processes {
		names = append(names, p.Name)
		if o.Process == "" || o.Process == p.Name {
			procs = append(procs, p)
		}
	}
	if len(procs) == 0 {
		return fmt.Errorf("job %s has no process %q (it has %s)", name, o.Process, ProcessRange(names))
	}
	out := &lineWriter{w: w}
	prefix := func(p ProcessStatus) string {
		if o.Process == "" {
			return "[" + p.Name + "] "
		}
		return ""
	}
	stream := func(p ProcessStatus) error {
		for read := false; ; {
			err := l.copyLog(ctx, name, p, o, out, prefix(p))
			switch {
			case o.Follow && ctx.Err() != nil:
				return nil // the caller stopped following
			case errors.Is(err, ErrNoOutput) && !o.Follow:
				if o.Process == "" {
					return nil // the others' output is still worth showing
				}
				return fmt.Errorf("job %s: %s has no output yet (%s)", name, p.Name, deathOrPhase(p))
			case err != nil && !errors.Is(err, ErrNoOutput):
				return err
			case !o.Follow:
				return nil
			}
			read = read || err == nil
			// Following, the output ended (the process exited) or has not
			// begun: it may go on in a replacement (a new pod of its Job).
			next, ok := l.nextOutput(ctx, name, p, read)
			if !ok {
				return nil
			}
			p = next
		}
	}
	if !o.Follow {
		for _, p := range procs {
			if err := stream(p); err != nil {
				return err
			}
		}
		return nil
	}
	return InParallel(procs, stream)
}

// copyLog writes process p's output to out, each line prefixed.
func (l *Lifecycle) copyLog(ctx context.Context, name string, p ProcessStatus, o LogOptions, out *lineWriter, prefix string) error {
	rc, err := l.p.OpenLog(ctx, name, p, LogStream{Follow: o.Follow, Tail: o.Tail, Since: o.Since, FromStart: o.FromStart, Timestamps: o.Timestamps})
	if err != nil {
		return err
	}
	defer rc.Close()
	return out.copyLines(rc, prefix)
}

// followPoll is how often a follow whose process's output ended looks
// for a replacement.
const followPoll = 500 * time.Millisecond

// nextOutput waits, while following, for output of process p beyond what
// was read (read: some of p's was): a new pod that replaced it (its LogRef
// changed; Kubernetes), or its first output. It gives up (false) once p
// has ended for good, once the aggregator has ended and p does not run
// (a replacement then has no job to join), or when the job is gone. A
// process restarted in place (same LogRef) is waited for to its end.
func (l *Lifecycle) nextOutput(ctx context.Context, name string, p ProcessStatus, read bool) (ProcessStatus, bool) {
	for waited := false; ; waited = true {
		st, err := l.p.Look(ctx, name, false)
		if err != nil {
			return ProcessStatus{}, false
		}
		i := slices.IndexFunc(st.Processes, func(q ProcessStatus) bool { return q.Name == p.Name })
		if i < 0 {
			return ProcessStatus{}, false
		}
		q, agg := st.Processes[i], st.Processes[0]
		switch {
		case q.Name != AggregatorProcess && agg.Name == AggregatorProcess && ended(agg.Phase) && q.Phase != Running:
			return ProcessStatus{}, false
		case q.LogRef != "" && q.LogRef != p.LogRef:
			return q, true
		case ended(q.Phase):
			return ProcessStatus{}, false
		case q.LogRef != "" && !read && waited:
			return q, true // try again for its first output
		}
		select {
		case <-ctx.Done():
			return ProcessStatus{}, false
		case <-time.After(followPoll):
		}
	}
}

func ended(ph Phase) bool { return ph == Succeeded || ph == Failed }

// InParallel calls f on every item, each in its own goroutine, and returns
// all their errors joined once every call has returned.
func InParallel[T any](items []T, f func(T) error) error {
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	for i, it := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(it)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func deathOrPhase(p ProcessStatus) string {
	if p.Message != "" {
		return p.Message
	}
	return string(p.Phase)
}

// lineWriter writes whole lines from several streams without interleaving
// them.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// maxLine bounds one line held in memory; a longer one is written in
// pieces of this size.
const maxLine = 1 << 20

func (l *lineWriter) copyLines(r io.Reader, prefix string) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := readLine(br)
		if line != "" {
			if !strings.HasSuffix(line, "\n") {
				line += "\n"
			}
			l.mu.Lock()
			_, werr := io.WriteString(l.w, prefix+line)
			l.mu.Unlock()
			if werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// readLine reads up to a newline, or maxLine bytes.
func readLine(br *bufio.Reader) (string, error) {
	var sb strings.Builder
	for sb.Len() < maxLine {
		frag, err := br.ReadSlice('\n')
		sb.Write(frag)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return sb.String(), err
		}
	}
	return sb.String(), nil
}
