package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// idxBytes builds an IDX file: magic, dims, body.
func idxBytes(magic uint32, dims []uint32, body []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, magic)
	binary.Write(&b, binary.BigEndian, dims)
	b.Write(body)
	return b.Bytes()
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadIDX(t *testing.T) {
	dir := t.TempDir()
	pix := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12} // 2 images of 2x3
	images := idxBytes(idxImagesMagic, []uint32{2, 2, 3}, pix)
	labels := idxBytes(idxLabelsMagic, []uint32{2}, []byte{7, 9})
	for _, tc := range []struct {
		name     string
		compress bool
	}{{"plain", false}, {"gzip", true}} {
		t.Run(tc.name, func(t *testing.T) {
			im, lb := images, labels
			if tc.compress {
				im, lb = gz(t, im), gz(t, lb)
			}
			got, n, rows, cols, err := ReadIDXImages(writeFile(t, dir, tc.name+"-images", im))
			if err != nil {
				t.Fatal(err)
			}
			if n != 2 || rows != 2 || cols != 3 || !bytes.Equal(got, pix) {
				t.Errorf("got n=%d %dx%d %v", n, rows, cols, got)
			}
			gotL, err := ReadIDXLabels(writeFile(t, dir, tc.name+"-labels", lb))
			if err != nil || !bytes.Equal(gotL, []byte{7, 9}) {
				t.Errorf("labels %v, %v", gotL, err)
			}
		})
	}
}

func TestReadIDXErrors(t *testing.T) {
	images := idxBytes(idxImagesMagic, []uint32{2, 2, 3}, make([]byte, 12))
	corruptGz := gz(t, images)
	corruptGz[len(corruptGz)-6] ^= 0xff // damage the CRC
	tests := []struct {
		name   string
		data   []byte // nil: no file
		labels bool
		want   string
	}{
		{"missing file", nil, false, "no such file"},
		{"empty", []byte{}, false, "truncated header"},
		{"truncated header", images[:10], false, "truncated header"},
		{"truncated data", images[:len(images)-1], false, "truncated: 11 of 12 data bytes"},
		{"truncated gzip data", gz(t, images[:len(images)-5]), false, "truncated: 7 of 12"},
		{"trailing data", append(append([]byte{}, images...), 0), false, "trailing data after 12 data bytes"},
		{"labels file as images", idxBytes(idxLabelsMagic, []uint32{1}, []byte{1}), false, "magic 0x00000801, expected 0x00000803 (IDX images)"},
		{"images file as labels", images, true, "magic 0x00000803, expected 0x00000801 (IDX labels)"},
		{"zero-size images", idxBytes(idxImagesMagic, []uint32{2, 0, 3}, nil), false, "image size 0x3"},
		{"absurd header", idxBytes(idxImagesMagic, []uint32{1 << 30, 1 << 30, 1 << 30}, nil), false, "corrupt?"},
		{"bad gzip stream", []byte{0x1f, 0x8b, 1, 2, 3}, false, "gzip"},
		{"gzip checksum", corruptGz, false, "checksum"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "f")
			if tc.data != nil {
				writeFile(t, filepath.Dir(p), "f", tc.data)
			}
			var err error
			if tc.labels {
				_, err = ReadIDXLabels(p)
			} else {
				_, _, _, _, err = ReadIDXImages(p)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestReadIDXSizes checks announced sizes against the data before
// allocating: a header larger than a plain file, a gzip bomb (a small
// file that really expands to the size it announces) and a gzip file
// announcing more than it holds each fail with an error naming the file,
// having allocated little.
func TestReadIDXSizes(t *testing.T) {
	dir := t.TempDir()
	// 72 MiB of zero images compress to about 70 kB: over gzipFloor and
	// far over maxGzipRatio times the file.
	var bombRaw bytes.Buffer
	binary.Write(&bombRaw, binary.BigEndian, []uint32{idxImagesMagic, 9 << 20, 8, 1})
	bombRaw.Write(make([]byte, 72<<20))
	bomb := gz(t, bombRaw.Bytes())
	bombRaw = bytes.Buffer{}
	tests := []struct {
		name     string
		data     []byte
		want     string
		maxAlloc uint64
	}{
		{"plain header past the file", idxBytes(idxImagesMagic, []uint32{1 << 20, 32, 32}, make([]byte, 100)), "truncated: 100 of 1073741824 data bytes", 1 << 20},
		{"gzip bomb", bomb, "header announces 75497472 data bytes, more than the 67108864 a gzip file of", 4 << 20},
		{"gzip announcing more than it holds", gz(t, idxBytes(idxImagesMagic, []uint32{1 << 15, 32, 32}, make([]byte, 1024))), "truncated: 1024 of 33554432 data bytes", 4 << 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, dir, strings.ReplaceAll(tc.name, " ", "-"), tc.data)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, _, _, _, err := ReadIDXImages(p)
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("error %v, want one naming %s and containing %q", err, p, tc.want)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > tc.maxAlloc {
				t.Errorf("allocated %d bytes, want at most %d", alloc, tc.maxAlloc)
			}
		})
	}
	if _, _, _, _, err := ReadIDXImages(dir); err == nil || !strings.Contains(err.Error(), dir+" is a directory, not a regular file") {
		t.Errorf("a directory: %v", err)
	}
	// A FIFO with no writer would block a plain open forever.
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadIDXLabels(fifo); err == nil || !strings.Contains(err.Error(), fifo+" is a named pipe (FIFO), not a regular file") {
		t.Errorf("a FIFO: %v", err)
	}
}
