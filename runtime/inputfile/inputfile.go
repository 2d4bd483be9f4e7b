// Package inputfile opens the files a job names and the runtime reads at
// start (the job file, device traces, the initial model, the client data
// mapping, the completion record) so that the read is bounded whatever the
// path names: a FIFO, a device such as /dev/zero, a directory or a file
// over the caller's bound is one error naming the file, found from the
// open descriptor before a byte is read, instead of a hang or an
// allocation without end.
package inputfile

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"syscall"
)

// Open opens path for reading and checks, on the descriptor, that it is a
// regular file of at most max bytes; it returns the file and its size.
// The open does not block: opening a FIFO with no writer would otherwise
// wait in open(2) itself, before any check could run. Readers should read
// at most the size returned (io.LimitReader), since the file may grow.
func Open(path string, max int64) (*os.File, int64, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s is %s, not a regular file", path, kind(fi.Mode()))
	}
	if fi.Size() > max {
		f.Close()
		return nil, 0, fmt.Errorf("%s is %d bytes, more than the %d allowed", path, fi.Size(), max)
	}
	return f, fi.Size(), nil
}

// Read returns the contents of the regular file at path, at most max
// bytes (see Open).
func Read(path string, max int64) ([]byte, error) {
	f, size, err := Open(path, max)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if size > math.MaxInt-bytes.MinRead {
		return nil, fmt.Errorf("%s is %d bytes, more than this machine can hold", path, size)
	}
	var b bytes.Buffer
	b.Grow(int(size) + bytes.MinRead) // ReadFrom wants MinRead free to see EOF without growing
	if _, err := b.ReadFrom(io.LimitReader(f, size)); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b.Bytes(), nil
}

func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "a special file (mode " + m.String() + ")"
}
