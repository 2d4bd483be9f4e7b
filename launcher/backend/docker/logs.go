package docker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/fedscale/fedscale-go/launcher/backend"
)

// OpenLog opens a container's output, stdout and stderr merged line by
// line (a partial line of one stream never splits a line of the other).
func (b *Backend) OpenLog(ctx context.Context, name string, p backend.ProcessStatus, o backend.LogStream) (_ io.ReadCloser, err error) {
	if p.LogRef == "" {
		return nil, backend.ErrNoOutput
	}
	// LogRef is "ID@ENGINE" (status.go): a container ID holds no '@'.
	id, spec, ok := strings.Cut(p.LogRef, "@")
	if !ok {
		return nil, fmt.Errorf("logs of %s: bad reference %q", p.Where, p.LogRef)
	}
	e, err := b.engine(spec, "the job's containers")
	if err != nil {
		return nil, err
	}
	opts := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: o.Follow, Timestamps: o.Timestamps}
	if o.Tail > 0 {
		opts.Tail = strconv.Itoa(o.Tail)
	}
	if !o.Since.IsZero() {
		opts.Since = fmt.Sprintf("%d.%09d", o.Since.Unix(), o.Since.Nanosecond())
	}
	rc, err := e.cli.ContainerLogs(ctx, id, opts)
	if err != nil {
		return nil, e.err(fmt.Errorf("logs of %s: %w", p.Where, err), "")
	}
	pr, pw := io.Pipe()
	go func() {
		stdout, stderr := &lineWriter{out: pw}, &lineWriter{out: pw}
		_, err := stdcopy.StdCopy(stdout, stderr, rc)
		stdout.flush()
		stderr.flush()
		if err != nil {
			err = fmt.Errorf("logs of %s: %w", p.Where, err)
		}
		pw.CloseWithError(err)
	}()
	return &demuxed{PipeReader: pr, rc: rc}, nil
}

// demuxed is the merged output; closing it ends the engine's stream too.
type demuxed struct {
	*io.PipeReader
	rc io.Closer
}

func (d *demuxed) Close() error {
	d.rc.Close()
	return d.PipeReader.Close()
}

// lineWriter passes complete lines to out; a partial line waits for its
// end (or flush).
type lineWriter struct {
	out io.Writer
	buf []byte
}

// maxPartial bounds a partial line held back; a longer one is passed on.
const maxPartial = 1 << 20

func (l *lineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	i := bytes.LastIndexByte(l.buf, '\n')
	if i < 0 && len(l.buf) > maxPartial {
		i = len(l.buf) - 1
	}
	if i < 0 {
		return len(p), nil
	}
	if _, err := l.out.Write(l.buf[:i+1]); err != nil {
		return 0, err
	}
	l.buf = append(l.buf[:0], l.buf[i+1:]...)
	return len(p), nil
}

func (l *lineWriter) flush() {
	if len(l.buf) > 0 {
		_, _ = l.out.Write(append(l.buf, '\n'))
		l.buf = l.buf[:0]
	}
}
