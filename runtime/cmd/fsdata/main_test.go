package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fedscale/fedscale-go/runtime/data"
)

// writeIDX writes a small MNIST-like set (4x4 images, labels i%10) under the
// standard file names, gzip-compressed like the real distribution.
func writeIDX(t *testing.T, dir string, nTrain, nTest int) {
	t.Helper()
	write := func(name string, magic uint32, dims []uint32, body []byte) {
		var raw bytes.Buffer
		binary.Write(&raw, binary.BigEndian, magic)
		binary.Write(&raw, binary.BigEndian, dims)
		raw.Write(body)
		var out bytes.Buffer
		zw := gzip.NewWriter(&out)
		zw.Write(raw.Bytes())
		zw.Close()
		if err := os.WriteFile(filepath.Join(dir, name+".gz"), out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []struct {
		prefix string
		n      int
	}{{"train", nTrain}, {"t10k", nTest}} {
		pix := make([]byte, s.n*16)
		for i := range pix {
			pix[i] = byte(i * 3)
		}
		labels := make([]byte, s.n)
		for i := range labels {
			labels[i] = byte(i % 10)
		}
		write(s.prefix+"-images-idx3-ubyte", 0x803, []uint32{uint32(s.n), 4, 4}, pix)
		write(s.prefix+"-labels-idx1-ubyte", 0x801, []uint32{uint32(s.n)}, labels)
	}
}

func execute(args ...string) (string, error) {
	var out bytes.Buffer
	cmd := newCommand(&out)
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	err := cmd.Execute()
	return out.String(), err
}

func TestFsdata(t *testing.T) {
	src := t.TempDir()
	writeIDX(t, src, 200, 30)
	out := filepath.Join(t.TempDir(), "ds")

	stdout, err := execute("--idx-dir", src, "--out", out, "--clients", "5", "--alpha", "0.5", "--seed", "2", "--min-samples", "10", "--label-names", "mnist")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{out + ": 5 clients, 200 train + 30 test samples, 10 classes, 4x4", "min ", "median ", "max "} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output %q lacks %q", stdout, want)
		}
	}
	if strings.Count(stdout, "\n") != 1 {
		t.Errorf("output is not one line: %q", stdout)
	}
	ds, err := data.Load(out, "")
	if err != nil {
		t.Fatal(err)
	}
	if ds.Train.Len() != 200 || ds.Test.Len() != 30 || ds.Train.NumClients() != 5 || ds.Classes != 10 {
		t.Errorf("loaded %d/%d samples, %d clients, %d classes", ds.Train.Len(), ds.Test.Len(), ds.Train.NumClients(), ds.Classes)
	}
	for _, c := range ds.Train.ClientSamples {
		if len(c) < 10 {
			t.Errorf("a client has %d < 10 samples", len(c))
		}
	}

	// Explicit file flags and --force over the existing dataset.
	g := func(name string) string { return filepath.Join(src, name+".gz") }
	if _, err := execute("--train-images", g("train-images-idx3-ubyte"), "--train-labels", g("train-labels-idx1-ubyte"),
		"--test-images", g("t10k-images-idx3-ubyte"), "--test-labels", g("t10k-labels-idx1-ubyte"),
		"--out", out, "--clients", "3", "--min-samples", "5", "--label-names", "a,b,c,d,e,f,g,h,i,j", "--force"); err != nil {
		t.Fatal(err)
	}
	csv, _ := os.ReadFile(filepath.Join(out, data.MappingDir, "test.csv"))
	if !strings.Contains(string(csv), "client_0002,test/2.png,c,2\n") {
		t.Errorf("test.csv after --force:\n%.200s", csv)
	}

	// The first N samples of each split.
	stdout, err = execute("--idx-dir", src, "--out", out, "--clients", "2", "--min-samples", "5", "--train-samples", "50", "--test-samples", "7", "--force")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "50 train + 7 test samples") {
		t.Errorf("output %q", stdout)
	}
}

func TestFsdataErrors(t *testing.T) {
	src := t.TempDir()
	writeIDX(t, src, 40, 10)
	existing := filepath.Join(t.TempDir(), "ds")
	if _, err := execute("--idx-dir", src, "--out", existing, "--clients", "2", "--min-samples", "1"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no out", []string{"--idx-dir", src}, `"out" not set`},
		{"no inputs", []string{"--out", "x"}, "missing --train-images, --train-labels, --test-images, --test-labels"},
		{"some inputs", []string{"--out", "x", "--train-images", "a", "--test-labels", "b"}, "missing --train-labels, --test-images"},
		{"dir and files", []string{"--out", "x", "--idx-dir", src, "--train-images", "a"}, "idx-dir train-images"},
		{"missing idx dir", []string{"--out", "x", "--idx-dir", "/nonexistent/idx"}, "idx dir /nonexistent/idx: missing"},
		{"too few label names", []string{"--out", "x", "--idx-dir", src, "--label-names", "a,b"}, "2 label names for 10 classes"},
		{"infeasible", []string{"--out", "x", "--idx-dir", src, "--clients", "5", "--min-samples", "9"}, "use fewer clients or a smaller min-samples"},
		{"existing dataset", []string{"--out", existing, "--idx-dir", src, "--clients", "2", "--min-samples", "1"}, "already holds a dataset"},
		{"bad number", []string{"--out", "x", "--idx-dir", src, "--clients", "many"}, "invalid argument"},
		{"positional argument", []string{"--out", "x", "--idx-dir", src, "extra"}, "unknown command"},
		{"negative sample count", []string{"--out", "x", "--idx-dir", src, "--test-samples", "-1"}, "--test-samples must not be negative (0: all), got -1"},
		{"more samples than the file", []string{"--out", "x", "--idx-dir", src, "--train-samples", "41"}, "training set: 41 samples asked for"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for i, a := range tc.args {
				if a == "x" {
					tc.args[i] = filepath.Join(t.TempDir(), "out")
				}
			}
			if _, err := execute(tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// --cifar10 writes torchvision's CIFAR-10 folder from IDX files: the images
// resized to 32x32 and made RGB, readable by the cifar10 pipeline.
func TestFsdataCIFAR10(t *testing.T) {
	src := t.TempDir()
	writeIDX(t, src, 23, 7)
	out := t.TempDir()
	stdout, err := execute("--idx-dir", src, "--out", out, "--cifar10", "--label-names", "fashion")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(out, data.CIFAR10Folder) + ": 23 train + 7 test images, 10 classes, 4x4 grey resized to 32x32 RGB"; !strings.Contains(stdout, want) {
		t.Errorf("output %q lacks %q", stdout, want)
	}
	ds, err := data.Open(data.Options{DataSet: "cifar10", DataDir: out, Clients: 2})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Train.Len() != 23 || ds.Test.Len() != 7 || ds.Train.Labels[13] != 3 || ds.Test.Labels[6] != 6 {
		t.Fatalf("loaded %d/%d samples, labels %v", ds.Train.Len(), ds.Test.Len(), ds.Train.Labels)
	}
	// Evaluation input is the image /255: three equal planes whose first
	// pixel is the 4x4 image's first pixel (Pillow's upscale keeps corners).
	p := ds.Pipe()
	x := make([]float32, p.SampleSize())
	if _, err := p.Batch(ds.Train, []int32{1}, x, nil); err != nil {
		t.Fatal(err)
	}
	if x[0] != float32(byte(16*3))/255 || x[0] != x[1024] || x[1024] != x[2048] {
		t.Errorf("sample 1 starts %v, %v, %v", x[0], x[1024], x[2048])
	}
	meta, err := os.ReadFile(filepath.Join(out, data.CIFAR10Folder, data.CIFAR10MetaFile))
	if err != nil || !bytes.Contains(meta, []byte("T-shirt/top")) {
		t.Errorf("batches.meta: %v %q", err, meta)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--idx-dir", src, "--out", out, "--cifar10"}, "already exists"},
		{[]string{"--idx-dir", src, "--out", out, "--cifar10", "--clients", "3", "--alpha", "1"}, "--clients, --alpha shape the FEMNIST layout's clients"},
		{[]string{"--idx-dir", src, "--out", t.TempDir(), "--cifar10", "--label-names", "a,b"}, "2 label names"},
	} {
		if _, err := execute(tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
	if _, err := execute("--idx-dir", src, "--out", out, "--cifar10", "--force"); err != nil {
		t.Errorf("--force: %v", err)
	}
}

// TestFsdataGzipBomb gives fsdata a training-images file of 70 kB that
// expands to the 72 MiB its header announces: it refuses the file by
// name before reading it, instead of decompressing a bomb.
func TestFsdataGzipBomb(t *testing.T) {
	src := t.TempDir()
	writeIDX(t, src, 20, 10)
	var raw bytes.Buffer
	binary.Write(&raw, binary.BigEndian, []uint32{0x803, 9 << 20, 8, 1})
	raw.Write(make([]byte, 72<<20))
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(raw.Bytes())
	zw.Close()
	bomb := filepath.Join(src, "train-images-idx3-ubyte.gz")
	if err := os.WriteFile(bomb, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := execute("--idx-dir", src, "--out", filepath.Join(t.TempDir(), "ds"))
	if err == nil || !strings.Contains(err.Error(), bomb) || !strings.Contains(err.Error(), "gunzip it") {
		t.Fatalf("error %v, want one naming %s", err, bomb)
	}
}
