package data

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeLayoutSet writes a 28x28 FEMNIST-layout data set: 40 training
// samples of clients c0..c3, 8 test samples, labels k%classes.
func writeLayoutSet(t *testing.T, classes int) string {
	t.Helper()
	dir := t.TempDir()
	if err := WriteLayout(dir, 28, 28, synthRecords(40, 28, 28, 4, classes), synthRecords(8, 28, 28, 2, classes), nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestOpenLayout(t *testing.T) {
	dir := writeLayoutSet(t, 5)
	mapFile := filepath.Join(dir, MappingDir, "train.csv")
	for _, tc := range []struct {
		name        string
		o           Options
		c, h, w, k  int
		clients     []int // samples per client
		clientNames []string
	}{
		// The grey pipeline: images as stored, train.csv's clients.
		{"grey", Options{DataSet: "synthetic", Grey: true, Clients: 3}, 1, 28, 28, 5, []int{10, 10, 10, 10}, []string{"c0", "c1", "c2", "c3"}},
		// femnist with its map file: the map file's clients.
		{"femnist with map", Options{DataSet: "femnist", MapFile: mapFile, Clients: 3}, 3, 32, 32, 62, []int{10, 10, 10, 10}, []string{"c0", "c1", "c2", "c3"}},
		// femnist without: FedScale's uniform split into num_participants.
		{"femnist uniform", Options{DataSet: "femnist", Clients: 3}, 3, 32, 32, 62, []int{13, 13, 13}, []string{"1", "2", "3"}},
	} {
		tc.o.DataDir = dir
		ds, err := Open(tc.o)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if c, h, w := ds.Input(); c != tc.c || h != tc.h || w != tc.w || ds.ModelClasses() != tc.k {
			t.Errorf("%s: input %dx%dx%d, %d classes", tc.name, c, h, w, ds.ModelClasses())
		}
		var sizes []int
		for _, s := range ds.Train.ClientSamples {
			sizes = append(sizes, len(s))
		}
		if !slices.Equal(sizes, tc.clients) || !slices.Equal(ds.Train.ClientNames, tc.clientNames) {
			t.Errorf("%s: clients %v of %v", tc.name, ds.Train.ClientNames, sizes)
		}
		// Clients agree with ClientSamples; the remainder has client -1.
		owned := 0
		for k, s := range ds.Train.ClientSamples {
			for _, i := range s {
				if ds.Train.Clients[i] != int32(k) {
					t.Fatalf("%s: sample %d of client %d has client %d", tc.name, i, k, ds.Train.Clients[i])
				}
				owned++
			}
		}
		if n := ds.Train.Len() - owned; n > 0 && slices.Index(ds.Train.Clients, -1) < 0 {
			t.Errorf("%s: %d samples without a client are not marked -1", tc.name, n)
		}
		p := ds.Pipe()
		dst := make([]float32, 2*p.SampleSize())
		labels, err := p.Batch(ds.Test, []int32{0, 1}, dst, nil)
		if err != nil || !slices.Equal(labels, []int32{0, 1}) {
			t.Errorf("%s: batch labels %v, %v", tc.name, labels, err)
		}
	}

	if _, err := Open(Options{DataSet: "femnist", DataDir: dir, Clients: 41}); err == nil || !strings.Contains(err.Error(), "num_participants") {
		t.Errorf("more clients than samples: %v", err)
	}
	if _, err := Open(Options{DataSet: "synthetic", DataDir: dir}); err == nil || !strings.Contains(err.Error(), "grey_input") {
		t.Errorf("unknown data set: %v", err)
	}
}

func TestOpenCIFAR10(t *testing.T) {
	dir := t.TempDir()
	trainPix, trainLabels := cifarImages(20, 1)
	testPix, testLabels := cifarImages(3, 2)
	if err := WriteCIFAR10(dir, trainPix, trainLabels, testPix, testLabels, nil, false); err != nil {
		t.Fatal(err)
	}
	ds, err := Open(Options{DataSet: "cifar10", DataDir: dir, Clients: 3})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := UniformPartition(20, 3)
	if !slices.EqualFunc(ds.Train.ClientSamples, want, slices.Equal[[]int32]) || ds.ModelClasses() != 10 || ds.Test.Len() != 3 {
		t.Errorf("clients %v, want %v; %d classes", ds.Train.ClientSamples, want, ds.ModelClasses())
	}
	if c, h, w := ds.Input(); c != 3 || h != 32 || w != 32 {
		t.Errorf("input %dx%dx%d", c, h, w)
	}

	// A map file: row k gives sample k's client (FedScale reads only the
	// first column); samples past the rows belong to no client.
	mapFile := filepath.Join(t.TempDir(), "map.csv")
	rows := "client_id,sample_path,label_name,label_id\n"
	for k := range 12 {
		rows += []string{"a", "b", "c"}[k%3] + ",ignored,x,0\n"
	}
	if err := os.WriteFile(mapFile, []byte(rows), 0o644); err != nil {
		t.Fatal(err)
	}
	ds, err = Open(Options{DataSet: "cifar10", DataDir: dir, MapFile: mapFile, Clients: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ds.Train.ClientNames, []string{"a", "b", "c"}) || !slices.Equal(ds.Train.ClientSamples[1], []int32{1, 4, 7, 10}) || ds.Train.Clients[15] != -1 {
		t.Errorf("trace partition: %v %v %v", ds.Train.ClientNames, ds.Train.ClientSamples, ds.Train.Clients)
	}
	for range 9 {
		rows += "d,x,x,0\n"
	}
	if err := os.WriteFile(mapFile, []byte(rows), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{DataSet: "cifar10", DataDir: dir, MapFile: mapFile}); err == nil || !strings.Contains(err.Error(), "more rows than the 20 training samples") {
		t.Errorf("map file too long: %v", err)
	}
	if _, err := Open(Options{DataSet: "cifar10", DataDir: t.TempDir(), Clients: 2}); err == nil || !strings.Contains(err.Error(), "data_batch_1") {
		t.Errorf("no batches: %v", err)
	}
}

// Mnist reads torchvision's MNIST/raw folder and resizes to 32x32.
func TestOpenMnist(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "MNIST", "raw")
	if err := os.MkdirAll(raw, 0o755); err != nil {
		t.Fatal(err)
	}
	writeIDXSet(t, raw, 30, 6, 10, false)
	ds, err := Open(Options{DataSet: "Mnist", DataDir: dir, Clients: 4})
	if err != nil {
		t.Fatal(err)
	}
	if c, h, w := ds.Input(); c != 1 || h != 32 || w != 32 || len(ds.Train.ClientSamples) != 4 || ds.Height != 3 || ds.Width != 4 {
		t.Errorf("input %dx%dx%d from %dx%d, %d clients", c, h, w, ds.Width, ds.Height, len(ds.Train.ClientSamples))
	}
	p := ds.Pipe()
	dst := make([]float32, p.SampleSize())
	if _, err := p.Batch(ds.Train, []int32{5}, dst, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{DataSet: "emnist", DataDir: dir, Clients: 4}); err == nil || !strings.Contains(err.Error(), "emnist-balanced-train-images-idx3-ubyte") {
		t.Errorf("no EMNIST files: %v", err)
	}
}
