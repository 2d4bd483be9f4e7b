package data

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
)

// Record is one sample to write: its client, label and Height*Width grey
// pixels, row-major.
type Record struct {
	Client string
	Label  int
	Pixels []uint8
}

// WriteOption changes how WriteLayout behaves.
type WriteOption func(*writeConfig)

type writeConfig struct {
	overwrite bool
}

// Overwrite lets WriteLayout replace a dataset already in the directory.
// Images are rewritten in place; files of the old dataset that the new one
// does not name are left alone (they are unreferenced and harmless).
func Overwrite() WriteOption {
	return func(c *writeConfig) { c.overwrite = true }
}

// WriteLayout writes train and test as a dataset in the FedScale layout:
// dir/train/<i>.png and dir/test/<i>.png (8-bit grey PNGs) and
// dir/client_data_mapping/{train,test}.csv. label_name is labelNames[label],
// or the label number when labelNames is too short. The output bytes depend
// only on the arguments. It refuses a directory that already holds a
// client_data_mapping folder unless given Overwrite().
//
// The CSVs are written last, each through a temporary file and a rename, so
// a directory with both mapping files always holds a complete dataset.
func WriteLayout(dir string, width, height int, train, test []Record, labelNames []string, opts ...WriteOption) error {
	var cfg writeConfig
	for _, o := range opts {
		o(&cfg)
	}
	if dir == "" {
		return errors.New("write layout: empty directory name")
	}
	if width <= 0 || height <= 0 || width*height > maxPixels {
		return fmt.Errorf("write layout %s: invalid image size %dx%d", dir, width, height)
	}
	for _, part := range []struct {
		name string
		recs []Record
	}{{"train", train}, {"test", test}} {
		if err := checkRecords(part.name, part.recs, width*height); err != nil {
			return fmt.Errorf("write layout %s: %w", dir, err)
		}
	}

	mapDir := filepath.Join(dir, MappingDir)
	switch _, err := os.Stat(mapDir); {
	case err == nil && !cfg.overwrite:
		return fmt.Errorf("write layout: %s already holds a dataset (%s exists); overwrite it explicitly", dir, MappingDir)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("write layout: %w", err)
	}
	if cfg.overwrite {
		// Drop the old mapping first: while images are being replaced the
		// directory must not look like a complete dataset.
		for _, f := range []string{"train.csv", "test.csv"} {
			if err := os.Remove(filepath.Join(mapDir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("write layout: %w", err)
			}
		}
	}
	for _, sub := range []string{"train", "test"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return fmt.Errorf("write layout: %w", err)
		}
	}
	if err := writePNGs(dir, width, height, train, test); err != nil {
		return fmt.Errorf("write layout %s: %w", dir, err)
	}
	if err := os.MkdirAll(mapDir, 0o755); err != nil {
		return fmt.Errorf("write layout: %w", err)
	}
	if err := writeMap(filepath.Join(mapDir, "train.csv"), "train", train, labelNames); err != nil {
		return fmt.Errorf("write layout: %w", err)
	}
	if err := writeMap(filepath.Join(mapDir, "test.csv"), "test", test, labelNames); err != nil {
		return fmt.Errorf("write layout: %w", err)
	}
	return nil
}

func checkRecords(part string, recs []Record, hw int) error {
	if len(recs) == 0 {
		return fmt.Errorf("no %s records", part)
	}
	for i, r := range recs {
		switch {
		case r.Client == "":
			return fmt.Errorf("%s record %d: empty client", part, i)
		case r.Label < 0 || r.Label > MaxLabel:
			return fmt.Errorf("%s record %d: label %d outside [0,%d]", part, i, r.Label, MaxLabel)
		case len(r.Pixels) != hw:
			return fmt.Errorf("%s record %d: %d pixels, expected %d", part, i, len(r.Pixels), hw)
		}
	}
	return nil
}

// bufferPool lets parallel PNG encoders reuse their zlib state.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() *png.EncoderBuffer  { v, _ := b.p.Get().(*png.EncoderBuffer); return v }
func (b *bufferPool) Put(e *png.EncoderBuffer) { b.p.Put(e) }

// writePNGs encodes and writes all images on GOMAXPROCS goroutines; the
// first error (in train-then-test order) is returned.
func writePNGs(dir string, width, height int, train, test []Record) error {
	n := len(train) + len(test)
	enc := &png.Encoder{CompressionLevel: png.BestSpeed, BufferPool: &bufferPool{}}
	errs := make([]error, n)
	var failed atomic.Bool
	bufs := sync.Pool{New: func() any { return new(bytes.Buffer) }}
	parallelFor(n, runtime.GOMAXPROCS(0), func(k int) {
		if failed.Load() {
			return
		}
		part, recs, i := "train", train, k
		if k >= len(train) {
			part, recs, i = "test", test, k-len(train)
		}
		buf := bufs.Get().(*bytes.Buffer)
		defer bufs.Put(buf)
		buf.Reset()
		err := encodeGray(enc, buf, recs[i].Pixels, width, height)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, part, strconv.Itoa(i)+".png"), buf.Bytes(), 0o644)
		}
		if err != nil {
			errs[k] = fmt.Errorf("%s image %d: %w", part, i, err)
			failed.Store(true)
		}
	})
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func writeMap(path, part string, recs []Record, labelNames []string) (err error) {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<16)
	cw := csv.NewWriter(bw)
	if err := cw.Write(MapHeader); err != nil {
		return err
	}
	row := make([]string, 4)
	for i, r := range recs {
		name := strconv.Itoa(r.Label)
		if r.Label < len(labelNames) {
			name = labelNames[r.Label]
		}
		row[0], row[1], row[2], row[3] = r.Client, part+"/"+strconv.Itoa(i)+".png", name, strconv.Itoa(r.Label)
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
