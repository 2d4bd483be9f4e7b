package data

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The batches Python 3 writes with NumPy 1.24 (testdata/cifar_py3_*.pkl:
// three random images, labels 7, 0, 9) decode under every protocol:
// protocol 2 spells bytes as _codecs.encode, 3 and 4 use BINBYTES, frames
// and STACK_GLOBAL, 5 rebuilds the array with _frombuffer over a
// BYTEARRAY8; one file has bytes keys.
func TestParseCIFARBatchPython3(t *testing.T) {
	for _, f := range []string{"cifar_py3_p2.pkl", "cifar_py3_p4.pkl", "cifar_py3_p5.pkl", "cifar_py3_bytes_keys_p3.pkl"} {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		pix, labels, err := parseCIFARBatch(b)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if !slices.Equal(labels, []int32{7, 0, 9}) || len(pix) != 3*CIFAR10ImageBytes {
			t.Errorf("%s: labels %v, %d bytes", f, labels, len(pix))
			continue
		}
		// Printed by the script that wrote the files: each image's first
		// four and last two bytes.
		heads := [][]byte{{99, 139, 212, 56}, {209, 106, 26, 194}, {29, 93, 36, 2}}
		tails := [][]byte{{226, 38}, {14, 200}, {214, 244}}
		for i := range 3 {
			img := pix[i*CIFAR10ImageBytes : (i+1)*CIFAR10ImageBytes]
			if !bytes.Equal(img[:4], heads[i]) || !bytes.Equal(img[len(img)-2:], tails[i]) {
				t.Errorf("%s: image %d starts %v ends %v", f, i, img[:4], img[len(img)-2:])
			}
		}
	}
}

// cifarImages makes n deterministic images and labels.
func cifarImages(n int, seed byte) ([]byte, []uint8) {
	pix := make([]byte, n*CIFAR10ImageBytes)
	for i := range pix {
		pix[i] = byte(i*7+i/3072) ^ seed
	}
	labels := make([]uint8, n)
	for i := range labels {
		labels[i] = uint8((i*3 + int(seed)) % 10)
	}
	return pix, labels
}

// WriteCIFAR10 and LoadCIFAR10 round-trip; the training images spread over
// five batches in order.
func TestCIFARWriteLoad(t *testing.T) {
	dir := t.TempDir()
	trainPix, trainLabels := cifarImages(12, 1)
	testPix, testLabels := cifarImages(4, 2)
	if err := WriteCIFAR10(dir, trainPix, trainLabels, testPix, testLabels, nil, false); err != nil {
		t.Fatal(err)
	}
	if err := WriteCIFAR10(dir, trainPix, trainLabels, testPix, testLabels, nil, false); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second write without overwrite: %v", err)
	}
	train, test, err := LoadCIFAR10(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(train.mem, trainPix) || !bytes.Equal(test.mem, testPix) || train.Channels() != 3 {
		t.Fatal("images differ after the round trip")
	}
	for i, l := range trainLabels {
		if train.Labels[i] != int32(l) {
			t.Fatalf("train label %d: %d, want %d", i, train.Labels[i], l)
		}
	}
	// 12 images: batches of 3, 3, 2, 2, 2.
	if train.Paths[2] != "data_batch_1/2" || train.Paths[3] != "data_batch_2/0" || train.Paths[11] != "data_batch_5/1" {
		t.Errorf("sample names %v", train.Paths)
	}
	if h, w, _ := train.Shape(); h != 32 || w != 32 {
		t.Errorf("shape %dx%d", w, h)
	}
	// data_dir may also be the batches folder itself.
	if _, _, err := LoadCIFAR10(filepath.Join(dir, CIFAR10Folder)); err != nil {
		t.Errorf("loading the folder itself: %v", err)
	}
}

// A data_dir without the batches gets one error naming every missing file.
func TestCIFARMissingBatches(t *testing.T) {
	dir := t.TempDir()
	_, _, err := LoadCIFAR10(dir)
	if err == nil || !strings.Contains(err.Error(), "data_batch_1,data_batch_2,data_batch_3,data_batch_4,data_batch_5,test_batch") ||
		!strings.Contains(err.Error(), filepath.Join(dir, CIFAR10Folder)) {
		t.Errorf("empty data_dir: %v", err)
	}
	trainPix, trainLabels := cifarImages(5, 1)
	if err := WriteCIFAR10(dir, trainPix, trainLabels, trainPix, trainLabels, nil, false); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"data_batch_3", "test_batch"} {
		if err := os.Remove(filepath.Join(dir, CIFAR10Folder, f)); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err = LoadCIFAR10(dir)
	if err == nil || !strings.Contains(err.Error(), "{data_batch_3,test_batch}") {
		t.Errorf("two batches missing: %v", err)
	}
	if _, _, err := LoadCIFAR10(filepath.Join(dir, "nope")); err == nil || !strings.Contains(err.Error(), "no such directory") {
		t.Errorf("missing data_dir: %v", err)
	}
}

// Hostile or broken batches give errors, never panics or allocations
// sized by a header: every truncation of a valid batch, huge declared
// lengths, sizes that do not add up, and pickles that would run code.
func TestParseCIFARBatchHostile(t *testing.T) {
	pix, labels := cifarImages(2, 3)
	good := cifarBatchPickle("b", "train", 0, pix, labels)
	if _, _, err := parseCIFARBatch(good); err != nil {
		t.Fatal(err)
	}
	for n := range len(good) {
		if _, _, err := parseCIFARBatch(good[:n]); err == nil {
			t.Fatalf("truncated to %d of %d bytes: no error", n, len(good))
		}
	}
	le32 := func(v uint32) string { return string(binary.LittleEndian.AppendUint32(nil, v)) }
	le64 := func(v uint64) string { return string(binary.LittleEndian.AppendUint64(nil, v)) }
	arr := func(rows, cols, n int) string { // a uint8 array pickle with the given shape and n data bytes
		var w pickleWriter
		w.uint8Array(rows, cols, make([]byte, n))
		return w.String()
	}
	for _, tc := range []struct{ name, pickle, want string }{
		{"huge BINSTRING", "\x80\x02T" + le32(0xfffffff0) + "abc.", "needs 4294967280 bytes"},
		{"huge BINBYTES8", "\x80\x04\x8e" + le64(1<<62) + ".", "needs 4611686018427387904 bytes"},
		{"huge frame", "\x80\x04\x95" + le64(1<<40) + "}.", "frame of 1099511627776 bytes"},
		{"huge LONG4", "\x80\x02\x8b" + le32(1<<30) + ".", "integer of 1073741824 bytes"},
		{"os.system", "\x80\x02cos\nsystem\nU\x02idR.", `refers to "os.system"`},
		{"builtins.eval", "\x80\x04\x8c\x08builtins\x8c\x04eval\x93.", `refers to "builtins.eval"`},
		{"no STOP", "\x80\x02}", "truncated"},
		{"not a dict", "\x80\x02K\x01.", "holds a int, not a dict"},
		{"no data", "\x80\x02}.", "no 'data' entry"},
		{"shape larger than data", "\x80\x02}(U\x04data" + arr(1000000, 3072, 3072) + "U\x06labels](K\x01eu.", "does not fit"},
		{"shape overflow", "\x80\x02}(U\x04data" + arr(1<<30, 1<<30, 10) + "u.", "does not fit"},
		{"labels do not match", "\x80\x02}(U\x04data" + arr(2, 3072, 2*3072) + "U\x06labels](K\x01eu.", "for 1 labels"},
		{"label out of range", "\x80\x02}(U\x04data" + arr(1, 3072, 3072) + "U\x06labels](K\x0aeu.", "label 0 is 10"},
		{"wrong dtype", strings.Replace("\x80\x02}(U\x04data"+arr(1, 3072, 3072)+"U\x06labels](K\x01eu.", "U\x02u1", "U\x02f4", 1), `dtype "f4"`},
		{"stack underflow", "\x80\x02s.", "stack underflow"},
		{"unknown memo", "\x80\x02h\x05.", "never stored"},
		{"mark underflow", "\x80\x02e.", "no MARK"},
		{"unknown opcode", "\x80\x02\xff.", "not allowed"},
		{"protocol 6", "\x80\x06}.", "unsupported protocol 6"},
		{"value flood", "\x80\x02N" + strings.Repeat("2", maxPickleValues) + ".", "more than 1048576 values"},
		{"memo flood", "\x80\x02N" + strings.Repeat("\x94", maxPickleValues+1) + ".", "more than 1048576 values"},
		{"mark flood", "\x80\x02" + strings.Repeat("(", maxPickleValues+1) + ".", "more than 1048576 values"},
	} {
		_, _, err := parseCIFARBatch([]byte(tc.pickle))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

func FuzzParseCIFARBatch(f *testing.F) {
	pix, labels := cifarImages(1, 4)
	f.Add(cifarBatchPickle("b", "train", 0, pix, labels))
	f.Add(cifarMetaPickle(1, CIFAR10Labels))
	for _, name := range []string{"cifar_py3_p2.pkl", "cifar_py3_p5.pkl"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pix, labels, err := parseCIFARBatch(b)
		if err == nil && len(pix) != len(labels)*CIFAR10ImageBytes {
			t.Fatalf("%d bytes for %d labels", len(pix), len(labels))
		}
	})
}

// Python reads what WriteCIFAR10 writes the way torchvision does
// (pickle.load with encoding='latin1', then np.vstack and reshape), and
// also with encoding='bytes'; torchvision's CIFAR10 itself loads the
// folder once its md5 check (which only the original files pass) is
// skipped. Skipped without python3 and NumPy; the torchvision part
// without torchvision, and in -short runs (importing it takes seconds).
func TestCIFARReadByPython(t *testing.T) {
	python := "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import numpy").Run(); err != nil {
		t.Skip("no python3 with numpy")
	}
	dir := t.TempDir()
	trainPix, trainLabels := cifarImages(7, 5)
	testPix, testLabels := cifarImages(2, 6)
	if err := WriteCIFAR10(dir, trainPix, trainLabels, testPix, testLabels, FashionMNISTLabels, false); err != nil {
		t.Fatal(err)
	}
	script := `
import pickle, sys, os, numpy as np
root = sys.argv[1]
folder = os.path.join(root, "cifar-10-batches-py")
data, labels = [], []
for i in range(1, 6):
    with open(os.path.join(folder, "data_batch_%d" % i), "rb") as f:
        e = pickle.load(f, encoding="latin1")
    data.append(e["data"]); labels.extend(e["labels"])
    with open(os.path.join(folder, "data_batch_%d" % i), "rb") as f:
        b = pickle.load(f, encoding="bytes")
    assert (b[b"data"] == e["data"]).all() and b[b"labels"] == e["labels"]
x = np.vstack(data).reshape(-1, 3, 32, 32)
assert x.dtype == np.uint8, x.dtype
with open(os.path.join(folder, "batches.meta"), "rb") as f:
    meta = pickle.load(f, encoding="latin1")
print(x.shape[0], x.sum(), sum(labels), meta["label_names"][0], meta["num_vis"])
if sys.argv[2] != "torchvision":
    sys.exit(0)
try:
    import torchvision
    import torchvision.datasets.cifar as cifar
except ImportError:
    sys.exit(0)
cifar.check_integrity = lambda *a, **k: True  # only the original files pass the md5 check
tr, te = cifar.CIFAR10(root, train=True), cifar.CIFAR10(root, train=False)
img, y = tr[6]
print(len(tr), len(te), np.asarray(img).transpose(2, 0, 1).sum(), y, tr.classes[1])
`
	mode := "torchvision"
	if testing.Short() {
		mode = "numpy"
	}
	out, err := exec.Command(python, "-c", script, dir, mode).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	var sum, lsum int
	for _, v := range trainPix {
		sum += int(v)
	}
	for _, l := range trainLabels {
		lsum += int(l)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if want := strings.Join([]string{strconv.Itoa(7), strconv.Itoa(sum), strconv.Itoa(lsum), FashionMNISTLabels[0], strconv.Itoa(CIFAR10ImageBytes)}, " "); lines[0] != want {
		t.Errorf("python read %q, want %q", lines[0], want)
	}
	if len(lines) > 1 {
		var s6 int
		for _, v := range trainPix[6*CIFAR10ImageBytes : 7*CIFAR10ImageBytes] {
			s6 += int(v)
		}
		if want := strings.Join([]string{strconv.Itoa(7), strconv.Itoa(2), strconv.Itoa(s6), strconv.Itoa(int(trainLabels[6])), FashionMNISTLabels[1]}, " "); lines[1] != want {
			t.Errorf("torchvision read %q, want %q", lines[1], want)
		}
	} else {
		t.Log("torchvision not installed: checked with pickle and NumPy only")
	}
}
