package data

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// IDX magic numbers: two zero bytes, type 0x08 (unsigned byte), then the
// number of dimensions.
const (
	idxImagesMagic = 0x00000803
	idxLabelsMagic = 0x00000801
)

// maxIDXBytes bounds the payload a header may announce (MNIST's training
// images are 47 MB); beyond it the header is treated as corrupt.
const maxIDXBytes = 1 << 32

// ReadIDXImages reads an IDX image file (magic 0x00000803), gzip-compressed
// or plain, and returns n images of rows*cols bytes each, concatenated.
func ReadIDXImages(path string) (pixels []uint8, n, rows, cols int, err error) {
	dims, body, err := readIDX(path, idxImagesMagic, 3)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	n, rows, cols = dims[0], dims[1], dims[2]
	if rows == 0 || cols == 0 {
		return nil, 0, 0, 0, fmt.Errorf("%s: image size %dx%d", path, rows, cols)
	}
	return body, n, rows, cols, nil
}

// ReadIDXLabels reads an IDX label file (magic 0x00000801), gzip-compressed
// or plain, and returns one byte per label.
func ReadIDXLabels(path string) ([]uint8, error) {
	_, body, err := readIDX(path, idxLabelsMagic, 1)
	return body, err
}

// readIDX checks the magic, reads ndims big-endian sizes and exactly the
// payload they announce; a short or overlong payload is an error.
func readIDX(path string, magic uint32, ndims int) (dims []int, body []byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("idx: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	var r io.Reader = br
	// Detect gzip by its magic bytes rather than the file name.
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: gzip: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}

	// The magic is checked before the sizes, so that a file of the other
	// kind is reported as such rather than as truncated.
	hdr := make([]byte, 4*(1+ndims))
	if _, err := io.ReadFull(r, hdr[:4]); err != nil {
		return nil, nil, fmt.Errorf("%s: truncated header: %w", path, err)
	}
	if got := binary.BigEndian.Uint32(hdr); got != magic {
		return nil, nil, fmt.Errorf("%s: magic 0x%08x, expected 0x%08x (%s)", path, got, magic, idxKind(magic))
	}
	if _, err := io.ReadFull(r, hdr[4:]); err != nil {
		return nil, nil, fmt.Errorf("%s: truncated header: %w", path, err)
	}
	size := uint64(1)
	for i := 0; i < ndims; i++ {
		d := binary.BigEndian.Uint32(hdr[4*(i+1):])
		dims = append(dims, int(d))
		size *= uint64(d)
		if size > maxIDXBytes {
			return nil, nil, fmt.Errorf("%s: header announces more than %d bytes; corrupt?", path, uint64(maxIDXBytes))
		}
	}
	// Read through a limit so the buffer grows with the data actually
	// present instead of trusting the header with one big allocation.
	body, err = io.ReadAll(io.LimitReader(r, int64(size)))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if uint64(len(body)) < size {
		return nil, nil, fmt.Errorf("%s: truncated: %d of %d data bytes", path, len(body), size)
	}
	var one [1]byte
	// Reading past the payload also makes gzip verify its checksum.
	switch k, err := io.ReadFull(r, one[:]); {
	case k > 0:
		return nil, nil, fmt.Errorf("%s: trailing data after %d data bytes", path, size)
	case err != io.EOF:
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return dims, body, nil
}

func idxKind(magic uint32) string {
	if magic == idxImagesMagic {
		return "IDX images"
	}
	return "IDX labels"
}
