package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/fedscale/fedscale-go/launcher/backend"
)

// tailBytes is how far from its end a process's output is read for a tail.
const tailBytes = 64 << 10

// OpenLog opens a process's output file; following, it reads on as the
// file grows until the process has exited.
func (b *Backend) OpenLog(ctx context.Context, name string, p backend.ProcessStatus, o backend.LogStream) (io.ReadCloser, error) {
	st, err := b.readState(name)
	if err != nil {
		return nil, err
	}
	for _, ps := range st.Processes {
		if ps.Name != p.Name {
			continue
		}
		f, err := os.Open(ps.Log)
		if errors.Is(err, os.ErrNotExist) {
			return nil, backend.ErrNoOutput
		}
		if err != nil {
			return nil, fmt.Errorf("local backend: %w", err)
		}
		if o.Tail > 0 && !o.FromStart {
			if fi, err := f.Stat(); err == nil && fi.Size() > tailBytes {
				if _, err := f.Seek(fi.Size()-tailBytes, io.SeekStart); err != nil {
					f.Close()
					return nil, fmt.Errorf("local backend: %w", err)
				}
			}
		}
		return &logReader{ctx: ctx, f: f, follow: o.Follow, alive: func() bool { return alive(ps) }, poll: b.opts.Poll}, nil
	}
	return nil, fmt.Errorf("job %s has no process %q", name, p.Name)
}

// logReader reads a growing file until its writer has exited.
type logReader struct {
	ctx    context.Context
	f      *os.File
	follow bool
	alive  func() bool
	poll   time.Duration
	ended  bool // the writer has exited: what is left is the last read
}

func (r *logReader) Read(p []byte) (int, error) {
	for {
		n, err := r.f.Read(p)
		if n > 0 || err != nil && !errors.Is(err, io.EOF) {
			return n, err
		}
		if !r.follow || r.ended {
			return 0, io.EOF
		}
		// Output written just before the exit comes with one last read.
		r.ended = !r.alive()
		if r.ended {
			continue
		}
		select {
		case <-r.ctx.Done():
			return 0, context.Cause(r.ctx)
		case <-time.After(r.poll):
		}
	}
}

func (r *logReader) Close() error { return r.f.Close() }
