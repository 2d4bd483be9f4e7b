package data

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"
)

// gzipped compresses b for a seed (a bytes.Buffer never fails a write).
func gzipped(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return out.Bytes()
}

// FuzzReadIDX reads any file as IDX images and as IDX labels: each read
// returns an error or exactly the payload its header announces, never
// more than the file can hold (a plain file's payload is the file less
// its header; a gzipped one's at most maxGzipRatio times the file, or
// gzipFloor), and never panics.
func FuzzReadIDX(f *testing.F) {
	images := idxBytes(idxImagesMagic, []uint32{2, 2, 3}, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	labels := idxBytes(idxLabelsMagic, []uint32{2}, []byte{7, 9})
	for _, seed := range [][]byte{
		images, labels, gzipped(images), gzipped(labels),
		images[:len(images)-1],                                                 // truncated payload
		append(append([]byte(nil), images...), 0),                              // trailing byte
		idxBytes(idxImagesMagic, []uint32{1 << 31, 1 << 31, 1 << 31}, nil),     // overflowing sizes
		idxBytes(idxImagesMagic, []uint32{0, 0, 0}, nil),                       // no image size
		gzipped(idxBytes(idxLabelsMagic, []uint32{1 << 30}, make([]byte, 64))), // announces more than it holds
		gzipped(append(gzipped(labels), 0)),                                    // gzip in gzip
		{0x1f, 0x8b}, {0, 0, 8}, {},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "idx")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		limit := max(int64(len(b)), int64(max(gzipFloor, maxGzipRatio*uint64(len(b)))))
		if pix, n, rows, cols, err := ReadIDXImages(path); err == nil {
			if rows < 1 || cols < 1 || int64(len(pix)) != int64(n)*int64(rows)*int64(cols) || int64(len(pix)) > limit {
				t.Fatalf("%d bytes for %d images of %dx%d from a file of %d bytes", len(pix), n, rows, cols, len(b))
			}
		}
		if lb, err := ReadIDXLabels(path); err == nil && int64(len(lb)) > limit {
			t.Fatalf("%d labels from a file of %d bytes", len(lb), len(b))
		}
	})
}
