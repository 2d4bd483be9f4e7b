package data

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// synthRecords makes n w*h records for clients c0..c{clients-1} (client
// k%clients), labels k%classes and pixels depending on k.
func synthRecords(n, w, h, clients, classes int) []Record {
	recs := make([]Record, n)
	for k := range recs {
		pix := make([]uint8, w*h)
		for j := range pix {
			pix[j] = uint8(k*7 + j*13)
		}
		recs[k] = Record{Client: "c" + string(rune('0'+k%clients)), Label: k % classes, Pixels: pix}
	}
	return recs
}

// readTree returns every file under dir, by slash path.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWriteLayoutRoundTrip(t *testing.T) {
	const w, h = 5, 3
	// More than one parallelFor chunk, so encoding runs on several goroutines.
	train := synthRecords(300, w, h, 3, 4)
	test := synthRecords(40, w, h, 2, 4)
	names := []string{"zero", "one, with comma", "two"} // label 3 falls back to "3"
	dir := filepath.Join(t.TempDir(), "ds")
	if err := WriteLayout(dir, w, h, train, test, names); err != nil {
		t.Fatal(err)
	}
	ds, err := Load(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if ds.Classes != 4 || ds.Width != w || ds.Height != h {
		t.Fatalf("classes %d size %dx%d", ds.Classes, ds.Width, ds.Height)
	}
	for _, c := range []struct {
		split *Split
		recs  []Record
	}{{ds.Train, train}, {ds.Test, test}} {
		if c.split.Len() != len(c.recs) {
			t.Fatalf("%s: %d samples, want %d", c.split.MapFile, c.split.Len(), len(c.recs))
		}
		if err := c.split.DecodeAll(); err != nil {
			t.Fatal(err)
		}
		for i, r := range c.recs {
			pix, err := c.split.Image(i)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(pix, r.Pixels) || int(c.split.Labels[i]) != r.Label ||
				c.split.ClientNames[c.split.Clients[i]] != r.Client {
				t.Fatalf("%s sample %d differs from what was written", c.split.MapFile, i)
			}
		}
	}
	csv, _ := os.ReadFile(filepath.Join(dir, MappingDir, "train.csv"))
	for _, want := range []string{hdr + "c0,train/0.png,zero,0\nc1,train/1.png,\"one, with comma\",1\n", "c0,train/3.png,3,3\n"} {
		if !strings.Contains(string(csv), want) {
			t.Errorf("train.csv lacks %q", want)
		}
	}

	// Deterministic bytes: a second write elsewhere is identical.
	dir2 := filepath.Join(t.TempDir(), "ds")
	if err := WriteLayout(dir2, w, h, train, test, names); err != nil {
		t.Fatal(err)
	}
	a, b := readTree(t, dir), readTree(t, dir2)
	if len(a) != len(train)+len(test)+2 || len(a) != len(b) {
		t.Fatalf("%d and %d files, want %d", len(a), len(b), len(train)+len(test)+2)
	}
	for name, content := range a {
		if !bytes.Equal(content, b[name]) {
			t.Errorf("%s differs between two writes", name)
		}
	}

	// An existing dataset is kept unless overwriting is asked for.
	small := synthRecords(2, w, h, 1, 2)
	if err := WriteLayout(dir, w, h, small, small, nil); err == nil || !strings.Contains(err.Error(), "already holds a dataset") {
		t.Fatalf("rewrite without Overwrite: error %v", err)
	}
	if err := WriteLayout(dir, w, h, small, small, nil, Overwrite()); err != nil {
		t.Fatal(err)
	}
	ds, err = Load(dir, "")
	if err != nil || ds.Train.Len() != 2 || ds.Classes != 2 {
		t.Fatalf("after overwrite: %v", err)
	}
}

func TestWriteLayoutErrors(t *testing.T) {
	good := synthRecords(2, 2, 2, 1, 2)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		dir         string
		w, h        int
		train, test []Record
		want        string
	}{
		{"zero width", "", 0, 2, good, good, "invalid image size 0x2"},
		{"no dir", "-", 2, 2, good, good, "empty directory name"},
		{"no train records", "", 2, 2, nil, good, "no train records"},
		{"no test records", "", 2, 2, good, nil, "no test records"},
		{"wrong pixel count", "", 2, 2, good, []Record{{Client: "a", Pixels: make([]uint8, 3)}}, "test record 0: 3 pixels, expected 4"},
		{"negative label", "", 2, 2, []Record{{Client: "a", Label: -1, Pixels: make([]uint8, 4)}}, good, "train record 0: label -1"},
		{"empty client", "", 2, 2, []Record{good[0], {Pixels: make([]uint8, 4)}}, good, "train record 1: empty client"},
		{"dir is a file", file, 2, 2, good, good, "write layout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.dir
			switch dir {
			case "":
				dir = t.TempDir()
			case "-":
				dir = ""
			}
			err := WriteLayout(dir, tc.w, tc.h, tc.train, tc.test, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
