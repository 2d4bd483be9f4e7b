package backend

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
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
	stream := func(p ProcessStatus) error {
		rc, err := l.p.OpenLog(ctx, name, p, LogStream{Follow: o.Follow, Tail: o.Tail, Since: o.Since, FromStart: o.FromStart, Timestamps: o.Timestamps})
		if errors.Is(err, ErrNoOutput) {
			if o.Process == "" {
				return nil // the others' output is still worth showing
			}
			return fmt.Errorf("job %s: %s has no output yet (%s)", name, p.Name, deathOrPhase(p))
		}
		if err == nil {
			defer rc.Close()
			prefix := ""
			if o.Process == "" {
				prefix = "[" + p.Name + "] "
			}
			err = out.copyLines(rc, prefix)
		}
		if err != nil && o.Follow && ctx.Err() != nil {
			return nil // the caller stopped following
		}
		return err
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
