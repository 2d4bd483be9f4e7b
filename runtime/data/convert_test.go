package data

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeIDXSet writes a small IDX dataset (nTrain/nTest images of 4x3, labels
// i%classes) under the standard names, gzip-compressed when gzipped.
func writeIDXSet(t *testing.T, dir string, nTrain, nTest, classes int, gzipped bool) {
	t.Helper()
	for _, s := range []struct {
		prefix string
		n      int
	}{{"train", nTrain}, {"t10k", nTest}} {
		pix := make([]byte, s.n*12)
		for i := range pix {
			pix[i] = byte(i)
		}
		labels := make([]byte, s.n)
		for i := range labels {
			labels[i] = byte(i % classes)
		}
		im := idxBytes(idxImagesMagic, []uint32{uint32(s.n), 3, 4}, pix)
		lb := idxBytes(idxLabelsMagic, []uint32{uint32(s.n)}, labels)
		suffix := ""
		if gzipped {
			im, lb, suffix = gz(t, im), gz(t, lb), ".gz"
		}
		writeFile(t, dir, s.prefix+"-images-idx3-ubyte"+suffix, im)
		writeFile(t, dir, s.prefix+"-labels-idx1-ubyte"+suffix, lb)
	}
}

func TestConvertIDX(t *testing.T) {
	src := t.TempDir()
	writeIDXSet(t, src, 150, 50, 5, true)
	files, err := FindIDX(src)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	opt := ConvertOptions{Out: out, Clients: 4, Alpha: 1, Seed: 3, MinSamples: 10, LabelNames: []string{"a", "b", "c", "d", "e"}}
	sum, err := ConvertIDX(files, opt)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Clients != 4 || sum.TrainSamples != 150 || sum.TestSamples != 50 || sum.Classes != 5 ||
		sum.MinPerClient < 10 || sum.MaxPerClient < int(sum.MedianPerClient) || sum.ImageHeight != 3 || sum.ImageWidth != 4 {
		t.Errorf("summary %+v", sum)
	}
	ds, err := Load(out, "")
	if err != nil {
		t.Fatal(err)
	}
	if ds.Train.NumClients() != 4 || ds.Test.NumClients() != 4 || ds.Classes != 5 || ds.Height != 3 || ds.Width != 4 {
		t.Fatalf("loaded %d/%d clients, %d classes, %dx%d", ds.Train.NumClients(), ds.Test.NumClients(), ds.Classes, ds.Width, ds.Height)
	}
	for k, name := range ds.Train.ClientNames {
		if name != ClientName(k) {
			t.Errorf("train client %d is %q, want %q", k, name, ClientName(k))
		}
	}
	// Test sample i goes to client i%4 and keeps its pixels and label.
	for i := range 50 {
		if ds.Test.ClientNames[ds.Test.Clients[i]] != ClientName(i%4) || ds.Test.Labels[i] != int32(i%5) {
			t.Fatalf("test sample %d: client %s label %d", i, ds.Test.ClientNames[ds.Test.Clients[i]], ds.Test.Labels[i])
		}
	}
	pix, err := ds.Test.Image(7)
	if err != nil || pix[0] != byte(7*12) {
		t.Errorf("test image 7 starts with %v, %v", pix[:1], err)
	}
	csv, _ := os.ReadFile(filepath.Join(out, MappingDir, "test.csv"))
	if !strings.Contains(string(csv), "client_0001,test/1.png,b,1\n") {
		t.Errorf("test.csv does not use the label names:\n%.200s", csv)
	}

	// Same seed, same bytes; a second conversion needs Overwrite.
	if _, err := ConvertIDX(files, opt); err == nil || !strings.Contains(err.Error(), "already holds") {
		t.Errorf("second conversion without Overwrite: %v", err)
	}
	out2 := filepath.Join(t.TempDir(), "out")
	opt.Out = out2
	if _, err := ConvertIDX(files, opt); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(out, MappingDir, "train.csv"))
	b, _ := os.ReadFile(filepath.Join(out2, MappingDir, "train.csv"))
	if string(a) != string(b) {
		t.Error("same seed gave different train.csv")
	}
}

func TestConvertIDXErrors(t *testing.T) {
	src := t.TempDir()
	writeIDXSet(t, src, 60, 10, 3, false)
	files, err := FindIDX(src)
	if err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	writeIDXSet(t, other, 59, 10, 3, false)
	misfit := files
	misfit.TrainLabels = filepath.Join(other, "train-labels-idx1-ubyte")
	swapped := files
	swapped.TestImages = files.TestLabels

	tests := []struct {
		name  string
		files IDXFiles
		opt   ConvertOptions
		want  string
	}{
		{"count mismatch", misfit, ConvertOptions{Clients: 2, Alpha: 1}, "training set: 60 images"},
		{"labels given as images", swapped, ConvertOptions{Clients: 2, Alpha: 1}, "test images: "},
		{"too few label names", files, ConvertOptions{Clients: 2, Alpha: 1, LabelNames: []string{"a", "b"}}, "2 label names for 3 classes"},
		{"infeasible partition", files, ConvertOptions{Clients: 10, Alpha: 1, MinSamples: 7}, "exceeds 60 samples"},
		{"no clients", files, ConvertOptions{Clients: 0, Alpha: 1}, "0 clients"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opt.Out = filepath.Join(t.TempDir(), "out")
			if _, err := ConvertIDX(tc.files, tc.opt); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestFindIDX(t *testing.T) {
	mixed := t.TempDir()
	writeIDXSet(t, mixed, 2, 2, 2, true)
	writeFile(t, mixed, "train-images-idx3-ubyte", nil) // plain wins over .gz
	partial := t.TempDir()
	writeFile(t, partial, "train-images-idx3-ubyte.gz", nil)

	tests := []struct {
		name, dir  string
		trainImage string // expected base name
		want       string // expected error
	}{
		{name: "plain preferred", dir: mixed, trainImage: "train-images-idx3-ubyte"},
		{name: "missing files", dir: partial, want: "missing train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]"},
		{name: "missing dir", dir: "/nonexistent/idx", want: "idx dir /nonexistent/idx: missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := FindIDX(tc.dir)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if filepath.Base(f.TrainImages) != tc.trainImage || filepath.Base(f.TestLabels) != "t10k-labels-idx1-ubyte.gz" {
				t.Errorf("found %+v", f)
			}
		})
	}
}
