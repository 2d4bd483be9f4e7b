package data

import (
	"io"
	"os"
	"sync"
)

// fileBufs holds buffers for reading image files, so decoding an image does
// not allocate its file's bytes (os.ReadFile would, every time). Pointers
// to slices are pooled so Put does not allocate.
var fileBufs = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// maxPooledFile bounds the buffers returned to the pool: a stray large file
// should not stay pinned in memory.
const maxPooledFile = 1 << 20

// readFilePooled reads the whole file into a pooled buffer; release it with
// putFileBuf once its bytes are no longer used. Errors are those of
// os.ReadFile (*fs.PathError from open or read).
//
// Unlike os.ReadFile it does not fstat the file to size the buffer: the
// pooled buffer is almost always big enough already, the stat would
// allocate a FileInfo, and reading to EOF takes the same two reads either
// way.
func readFilePooled(name string) (*[]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	bp := fileBufs.Get().(*[]byte)
	b := (*bp)[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // grow, as os.ReadFile does
		}
		n, err := f.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			*bp = b
			return bp, nil
		}
		if err != nil {
			*bp = b
			putFileBuf(bp)
			return nil, err
		}
	}
}

// putFileBuf returns a buffer from readFilePooled to the pool.
func putFileBuf(bp *[]byte) {
	if cap(*bp) > maxPooledFile {
		return
	}
	*bp = (*bp)[:0]
	fileBufs.Put(bp)
}
