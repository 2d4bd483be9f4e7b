package data

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/fedscale/fedscale-go/runtime/inputfile"
	"github.com/fedscale/fedscale-go/runtime/pickle"
)

// CIFAR-10 as torchvision keeps it on disk (torchvision.datasets.CIFAR10):
// root/cifar-10-batches-py holding five training batches, one test batch
// and batches.meta, each a pickled dict. A batch's b'data' is a NumPy
// uint8 array of N x 3072 (1024 red, 1024 green, 1024 blue bytes per
// image, rows top to bottom) and b'labels' a list of N labels in 0..9.
const (
	CIFAR10Folder   = "cifar-10-batches-py"
	CIFAR10TestFile = "test_batch"
	CIFAR10MetaFile = "batches.meta"
	// CIFAR10ImageBytes is one image: 3 channels of 32 x 32.
	CIFAR10ImageBytes = 3 * 32 * 32
	cifarClasses      = 10
)

// CIFAR10TrainFiles are the training batches, in the order torchvision
// concatenates them.
var CIFAR10TrainFiles = [5]string{"data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"}

// CIFAR10Labels are CIFAR-10's class names, by label.
var CIFAR10Labels = []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

// maxCIFARFileBytes bounds one batch file (the real ones are 31 MB): a
// larger file is refused before it is read.
const maxCIFARFileBytes = 1 << 30

// cifarFolder returns the folder holding the batches: dataDir's
// cifar-10-batches-py, where torchvision looks, or dataDir itself when the
// batches lie there directly. When neither holds all six batches the error
// names the missing files.
func cifarFolder(dataDir string) (string, error) {
	if err := checkDir(dataDir); err != nil {
		return "", err
	}
	files := append(CIFAR10TrainFiles[:], CIFAR10TestFile)
	missing := func(dir string) ([]string, error) {
		var out []string
		for _, f := range files {
			fi, err := os.Stat(filepath.Join(dir, f))
			switch {
			case errors.Is(err, fs.ErrNotExist):
				out = append(out, f)
			case err != nil:
				return nil, fmt.Errorf("data_dir: %w", err)
			case !fi.Mode().IsRegular():
				return nil, fmt.Errorf("data_dir: %s is not a regular file", filepath.Join(dir, f))
			}
		}
		return out, nil
	}
	dir := filepath.Join(dataDir, CIFAR10Folder)
	miss, err := missing(dir)
	if err != nil {
		return "", err
	}
	if len(miss) == 0 {
		return dir, nil
	}
	if len(miss) == len(files) {
		// Perhaps data_dir is the batches folder itself.
		if direct, err := missing(dataDir); err == nil && len(direct) == 0 {
			return dataDir, nil
		}
	}
	return "", fmt.Errorf("data_dir %s: CIFAR-10 batches missing: %s/{%s} (the folder torchvision.datasets.CIFAR10 reads; `fsdata --cifar10` writes one)",
		dataDir, dir, strings.Join(miss, ","))
}

// LoadCIFAR10 reads torchvision's CIFAR-10 under dataDir (see cifarFolder):
// the training batches concatenated in order, and the test batch, as
// in-memory splits of 3 x 32 x 32 images. Every sample belongs to no
// client until the caller partitions the training split.
func LoadCIFAR10(dataDir string) (train, test *Split, err error) {
	dir, err := cifarFolder(dataDir)
	if err != nil {
		return nil, nil, err
	}
	var pix []byte
	var labels []int32
	var paths []string
	for k, f := range CIFAR10TrainFiles {
		p, l, err := readCIFARBatch(filepath.Join(dir, f))
		if err != nil {
			return nil, nil, err
		}
		if pix == nil {
			// The five batches are usually the same size: one allocation.
			pix = make([]byte, 0, len(p)*len(CIFAR10TrainFiles))
		}
		pix = append(pix, p...)
		labels = append(labels, l...)
		paths = appendSamplePaths(paths, CIFAR10TrainFiles[k], len(l))
	}
	p, l, err := readCIFARBatch(filepath.Join(dir, CIFAR10TestFile))
	if err != nil {
		return nil, nil, err
	}
	train = newMemSplit(dir, filepath.Join(dir, "data_batch_*"), pix, 3, 32, 32, labels, paths)
	test = newMemSplit(dir, filepath.Join(dir, CIFAR10TestFile), p, 3, 32, 32, l, appendSamplePaths(nil, CIFAR10TestFile, len(l)))
	return train, test, nil
}

// appendSamplePaths names in-memory samples file/0, file/1, ...: they
// stand in for the sample paths of a layout in messages and digests.
func appendSamplePaths(paths []string, file string, n int) []string {
	for i := range n {
		paths = append(paths, file+"/"+strconv.Itoa(i))
	}
	return paths
}

// readCIFARBatch reads one pickled batch: its images (a slice of the
// file's bytes, N*3072) and labels.
func readCIFARBatch(path string) ([]byte, []int32, error) {
	b, err := inputfile.Read(path, maxCIFARFileBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("CIFAR-10 batch: %w", err)
	}
	pix, labels, err := parseCIFARBatch(b)
	if err != nil {
		return nil, nil, fmt.Errorf("CIFAR-10 batch %s: %w", path, err)
	}
	return pix, labels, nil
}

// parseCIFARBatch decodes a pickled batch dict.
func parseCIFARBatch(b []byte) ([]byte, []int32, error) {
	v, err := unpickle(b)
	if err != nil {
		return nil, nil, err
	}
	d, ok := v.(*pickle.Dict)
	if !ok {
		return nil, nil, fmt.Errorf("holds a %s, not a dict", pyTypeName(v))
	}
	dv, ok := d.Get("data")
	if !ok {
		return nil, nil, errors.New("no 'data' entry")
	}
	arr, ok := dv.(*pyArray)
	if !ok {
		return nil, nil, fmt.Errorf("'data' is a %s, not a NumPy array", pyTypeName(dv))
	}
	lv, ok := d.Get("labels")
	if !ok {
		if lv, ok = d.Get("fine_labels"); !ok {
			return nil, nil, errors.New("no 'labels' entry")
		}
	}
	items, ok := pickle.Items(lv)
	if !ok {
		return nil, nil, fmt.Errorf("'labels' is a %s, not a list", pyTypeName(lv))
	}
	if len(arr.data)%CIFAR10ImageBytes != 0 || len(arr.data)/CIFAR10ImageBytes != len(items) {
		return nil, nil, fmt.Errorf("'data' holds %d bytes (shape %v) for %d labels; expected %d per image", len(arr.data), arr.shape, len(items), CIFAR10ImageBytes)
	}
	if len(items) == 0 {
		return nil, nil, errors.New("holds no images")
	}
	labels := make([]int32, len(items))
	for i, it := range items {
		l, ok := it.(int64)
		if !ok || l < 0 || l >= cifarClasses {
			return nil, nil, fmt.Errorf("label %d is %v; CIFAR-10 labels are 0..%d", i, it, cifarClasses-1)
		}
		labels[i] = int32(l)
	}
	return arr.data, labels, nil
}

// WriteCIFAR10 writes a data set as torchvision's CIFAR-10 folder
// dir/cifar-10-batches-py: the training images spread over the five
// batches as evenly as their count allows (earlier batches take the
// remainder), the test images in test_batch, and batches.meta naming the
// classes labelNames (nil: CIFAR-10's own). Images are CIFAR10ImageBytes each (channel planes, rows top to
// bottom), labels 0..9. The files are pickles of the same shape as the
// originals (protocol 2, Python 2 strings, a NumPy uint8 array), so
// pickle.load(f, encoding='latin1') and encoding='bytes' both read them;
// torchvision's CIFAR10 reads them too, though its md5 check rejects any
// files but the originals (pass download=False and skip the check). It
// refuses a folder that already exists unless overwrite is set.
func WriteCIFAR10(dir string, trainPix []byte, trainLabels []uint8, testPix []byte, testLabels []uint8, labelNames []string, overwrite bool) error {
	if labelNames == nil {
		labelNames = CIFAR10Labels
	}
	if len(labelNames) != cifarClasses {
		return fmt.Errorf("write CIFAR-10: %d label names for %d classes", len(labelNames), cifarClasses)
	}
	for _, part := range []struct {
		name   string
		pix    []byte
		labels []uint8
	}{{"training", trainPix, trainLabels}, {"test", testPix, testLabels}} {
		if len(part.labels) == 0 || len(part.pix) != len(part.labels)*CIFAR10ImageBytes {
			return fmt.Errorf("write CIFAR-10: %d %s labels for %d bytes of images (%d per image)", len(part.labels), part.name, len(part.pix), CIFAR10ImageBytes)
		}
		for i, l := range part.labels {
			if l >= cifarClasses {
				return fmt.Errorf("write CIFAR-10: %s label %d is %d; CIFAR-10 labels are 0..%d", part.name, i, l, cifarClasses-1)
			}
		}
	}
	if len(trainLabels) < len(CIFAR10TrainFiles) {
		return fmt.Errorf("write CIFAR-10: %d training images cannot fill %d batches", len(trainLabels), len(CIFAR10TrainFiles))
	}
	out := filepath.Join(dir, CIFAR10Folder)
	switch _, err := os.Stat(out); {
	case err == nil && !overwrite:
		return fmt.Errorf("write CIFAR-10: %s already exists; overwrite it explicitly", out)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("write CIFAR-10: %w", err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("write CIFAR-10: %w", err)
	}
	n := len(trainLabels)
	per, extra := n/len(CIFAR10TrainFiles), n%len(CIFAR10TrainFiles)
	lo := 0
	for k, f := range CIFAR10TrainFiles {
		hi := lo + per
		if k < extra {
			hi++
		}
		b := cifarBatchPickle(fmt.Sprintf("training batch %d of %d", k+1, len(CIFAR10TrainFiles)), "train", lo,
			trainPix[lo*CIFAR10ImageBytes:hi*CIFAR10ImageBytes], trainLabels[lo:hi])
		if err := writeFileAtomic(filepath.Join(out, f), b); err != nil {
			return fmt.Errorf("write CIFAR-10: %w", err)
		}
		lo = hi
	}
	if err := writeFileAtomic(filepath.Join(out, CIFAR10TestFile), cifarBatchPickle("testing batch 1 of 1", "test", 0, testPix, testLabels)); err != nil {
		return fmt.Errorf("write CIFAR-10: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(out, CIFAR10MetaFile), cifarMetaPickle(per+min(extra, 1), labelNames)); err != nil {
		return fmt.Errorf("write CIFAR-10: %w", err)
	}
	return nil
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// pickleWriter emits the protocol-2 opcodes of a Python 2 cPickle dump.
type pickleWriter struct{ bytes.Buffer }

func (w *pickleWriter) op(b ...byte) { w.Write(b) }

// str writes a Python 2 str: SHORT_BINSTRING or BINSTRING.
func (w *pickleWriter) str(s []byte) {
	if len(s) < 256 {
		w.op('U', byte(len(s)))
	} else {
		w.op('T')
		w.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(s))))
	}
	w.Write(s)
}

// int writes a small integer with the shortest opcode.
func (w *pickleWriter) int(v int) {
	switch {
	case v >= 0 && v < 1<<8:
		w.op('K', byte(v))
	case v >= 0 && v < 1<<16:
		w.op('M', byte(v), byte(v>>8))
	default:
		w.op('J')
		w.Write(binary.LittleEndian.AppendUint32(nil, uint32(int32(v))))
	}
}

func (w *pickleWriter) global(module, name string) {
	w.op('c')
	w.WriteString(module + "\n" + name + "\n")
}

// list writes a list of n items, put(i) writing item i, in APPENDS runs of
// 1000 as pickle does.
func (w *pickleWriter) list(n int, put func(i int)) {
	w.op(']')
	for lo := 0; lo < n; lo += 1000 {
		w.op('(')
		for i := lo; i < min(lo+1000, n); i++ {
			put(i)
		}
		w.op('e')
	}
}

// uint8Array writes numpy's pickle of a uint8 array of rows x cols:
// _reconstruct(ndarray, (0,), 'b') built from
// (1, (rows, cols), dtype('u1'), False, data).
func (w *pickleWriter) uint8Array(rows, cols int, data []byte) {
	w.global("numpy.core.multiarray", "_reconstruct")
	w.global("numpy", "ndarray")
	w.int(0)
	w.op(0x85) // TUPLE1
	w.str([]byte("b"))
	w.op(0x87, 'R') // TUPLE3 REDUCE
	w.op('(')
	w.int(1)
	w.int(rows)
	w.int(cols)
	w.op(0x86) // TUPLE2
	w.global("numpy", "dtype")
	w.str([]byte("u1"))
	w.int(0)
	w.int(1)
	w.op(0x87, 'R')
	// dtype state: (3, '|', None, None, None, -1, -1, 0)
	w.op('(')
	w.int(3)
	w.str([]byte("|"))
	w.op('N', 'N', 'N')
	w.int(-1)
	w.int(-1)
	w.int(0)
	w.op('t', 'b')
	w.op(0x89) // False: C order
	w.str(data)
	w.op('t', 'b')
}

func cifarBatchPickle(batchLabel, part string, first int, pix []byte, labels []uint8) []byte {
	var w pickleWriter
	w.Grow(len(pix) + 64*len(labels) + 1024)
	w.op(0x80, 2, '}', '(')
	w.str([]byte("batch_label"))
	w.str([]byte(batchLabel))
	w.str([]byte("labels"))
	w.list(len(labels), func(i int) { w.int(int(labels[i])) })
	w.str([]byte("data"))
	w.uint8Array(len(labels), CIFAR10ImageBytes, pix)
	w.str([]byte("filenames"))
	w.list(len(labels), func(i int) { w.str(fmt.Appendf(nil, "%s_%05d.png", part, first+i)) })
	w.op('u', '.')
	return w.Bytes()
}

func cifarMetaPickle(perBatch int, labelNames []string) []byte {
	var w pickleWriter
	w.op(0x80, 2, '}', '(')
	w.str([]byte("num_cases_per_batch"))
	w.int(perBatch)
	w.str([]byte("label_names"))
	w.list(len(labelNames), func(i int) { w.str([]byte(labelNames[i])) })
	w.str([]byte("num_vis"))
	w.int(CIFAR10ImageBytes)
	w.op('u', '.')
	return w.Bytes()
}
