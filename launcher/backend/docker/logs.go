package docker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/fedscale/fedscale-go/launcher/backend"
)

// Logs writes the job's container output to w: one process's as is, or
// (o.Process "") every process's, each line prefixed "[executor-1] ". Not
// following, processes are written one after the other, aggregator first;
// following, lines interleave as they come, until every container has
// exited or ctx ends (which is not an error).
func (b *Backend) Logs(ctx context.Context, name string, o backend.LogOptions, w io.Writer) (err error) {
	defer b.wrap(&err)
	cs, err := b.inspect(ctx, name)
	if err != nil {
		return err
	}
	if len(cs) == 0 {
		return backend.NotFound(name, b.where())
	}
	if o.Process != "" {
		var names []string
		for _, c := range cs {
			if c.proc == o.Process || c.name == o.Process {
				return b.copyLogs(ctx, c, o, w, w)
			}
			names = append(names, c.proc)
		}
		return fmt.Errorf("job %q has no process %q (it has %s)", name, o.Process, strings.Join(names, ", "))
	}
	out := &lockedWriter{w: w}
	if !o.Follow {
		for _, c := range cs {
			if err := b.prefixed(ctx, c, o, out); err != nil {
				return err
			}
		}
		return nil
	}
	return inParallel(cs, func(c ctr) error { return b.prefixed(ctx, c, o, out) })
}

// prefixed copies c's output to out, each line prefixed with its process.
func (b *Backend) prefixed(ctx context.Context, c ctr, o backend.LogOptions, out *lockedWriter) error {
	prefix := "[" + c.proc + "] "
	stdout := &lineWriter{prefix: prefix, out: out}
	stderr := &lineWriter{prefix: prefix, out: out}
	err := b.copyLogs(ctx, c, o, stdout, stderr)
	stdout.flush()
	stderr.flush()
	return err
}

func (b *Backend) copyLogs(ctx context.Context, c ctr, o backend.LogOptions, stdout, stderr io.Writer) error {
	follow := o.Follow
	lo := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: follow, Timestamps: o.Timestamps}
	if o.Tail > 0 {
		lo.Tail = strconv.Itoa(o.Tail)
	}
	if !o.Since.IsZero() {
		lo.Since = fmt.Sprintf("%d.%09d", o.Since.Unix(), o.Since.Nanosecond())
	}
	rc, err := b.cli.ContainerLogs(ctx, c.id, lo)
	if err != nil {
		if follow && ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("logs of %s: %w", c.name, err)
	}
	defer rc.Close()
	if _, err := stdcopy.StdCopy(stdout, stderr, rc); err != nil {
		if follow && ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("logs of %s: %w", c.name, err)
	}
	return nil
}

// lockedWriter serializes whole writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// lineWriter writes complete lines, prefixed, to out; a partial line waits
// for its end (or flush).
type lineWriter struct {
	prefix string
	out    io.Writer
	buf    []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	i := bytes.LastIndexByte(l.buf, '\n')
	if i < 0 {
		return len(p), nil
	}
	var sb bytes.Buffer
	for _, line := range bytes.SplitAfter(l.buf[:i+1], []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		sb.WriteString(l.prefix)
		sb.Write(line)
	}
	l.buf = append(l.buf[:0], l.buf[i+1:]...)
	if _, err := l.out.Write(sb.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (l *lineWriter) flush() {
	if len(l.buf) > 0 {
		_, _ = l.out.Write([]byte(l.prefix + string(l.buf) + "\n"))
		l.buf = l.buf[:0]
	}
}
