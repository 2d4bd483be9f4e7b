package data

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/fedscale/fedscale-go/runtime/inputfile"
)

// IDX magic numbers: two zero bytes, type 0x08 (unsigned byte), then the
// number of dimensions.
const (
	idxImagesMagic = 0x00000803
	idxLabelsMagic = 0x00000801
)

// maxIDXBytes bounds the payload a header may announce (MNIST's training
// images are 47 MB, EMNIST's largest file 547 MB); beyond it the header
// is treated as corrupt.
const maxIDXBytes = 1 << 32

// A gzip stream does not say how much it expands to, and deflate expands
// up to 1032 times: a 1 MB file can hold 1 GiB of IDX data, and reading
// it would take gigabytes. The IDX data sets compress 2 to 5 times, so a
// gzipped file may announce at most maxGzipRatio times its own size (or
// gzipFloor, for small files); a larger data set is read from the plain
// file, whose size the header must match exactly.
const (
	maxGzipRatio = 100
	gzipFloor    = 64 << 20
)

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
// payload they announce; a short or overlong payload is an error. The
// announced size is checked against the file before anything is
// allocated: a plain file's size must match it, a gzipped file must be
// large enough to plausibly hold it (maxGzipRatio), and its payload is
// read as it decompresses, never allocated from the header alone.
func readIDX(path string, magic uint32, ndims int) (dims []int, body []byte, err error) {
	// A FIFO or device would block or never end: inputfile refuses them
	// before a byte is read. No IDX file is larger than the payload bound
	// plus its header.
	f, fileSize, err := inputfile.Open(path, maxIDXBytes+4*(1+int64(ndims)))
	if err != nil {
		return nil, nil, fmt.Errorf("idx: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	var r io.Reader = br
	// Detect gzip by its magic bytes rather than the file name.
	gzipped := false
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: gzip: %w", path, err)
		}
		defer zr.Close()
		r, gzipped = zr, true
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
	if gzipped {
		if limit := max(gzipFloor, maxGzipRatio*uint64(fileSize)); size > limit {
			return nil, nil, fmt.Errorf("%s: header announces %d data bytes, more than the %d a gzip file of %d bytes may expand to (%d times its size); gunzip it and read the plain file",
				path, size, limit, fileSize, maxGzipRatio)
		}
		// Grown as the data arrives, never allocated on the header's word.
		body, err = io.ReadAll(io.LimitReader(r, int64(size)))
	} else {
		switch have := uint64(max(fileSize-int64(len(hdr)), 0)); {
		case have < size:
			return nil, nil, fmt.Errorf("%s: truncated: %d of %d data bytes", path, have, size)
		case have > size:
			return nil, nil, fmt.Errorf("%s: trailing data after %d data bytes", path, size)
		}
		body = make([]byte, size)
		_, err = io.ReadFull(r, body)
	}
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
