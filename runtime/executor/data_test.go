package executor

import (
	mrand "math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/fedscale/fedscale-go/runtime/config"
	"github.com/fedscale/fedscale-go/runtime/data"
	"github.com/fedscale/fedscale-go/runtime/jobtest"
	"github.com/fedscale/fedscale-go/runtime/model"
	"github.com/fedscale/fedscale-go/runtime/model/cpu"
)

// cifarDir writes a small CIFAR-10 folder: 40 training and 10 test images.
func cifarDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	pix := make([]byte, 50*data.CIFAR10ImageBytes)
	for i := range pix {
		pix[i] = byte(i*31 + i/7)
	}
	labels := make([]uint8, 50)
	for i := range labels {
		labels[i] = uint8(i % 10)
	}
	n := 40 * data.CIFAR10ImageBytes
	if err := data.WriteCIFAR10(dir, pix[:n], labels[:40], pix[n:], labels[40:], nil, false); err != nil {
		t.Fatal(err)
	}
	return dir
}

func layoutDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := jobtest.WriteSynthetic(dir, jobtest.SynthOptions{Clients: 3, PerClient: 12, Test: 6, Classes: 4, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func conf(dataSet, dir string, grey bool) config.Conf {
	c := config.Default()
	c.DataSet, c.DataDir, c.GreyInput = dataSet, dir, grey
	c.Model = "logistic"
	c.NumParticipants = 4
	c.LogPath = ""
	return c
}

// Each data set's pipeline sets the model input the executor registers
// with and builds its model for.
func TestDataInfoFromPipeline(t *testing.T) {
	layout, cifar := layoutDir(t), cifarDir(t)
	for _, tc := range []struct {
		name       string
		c          config.Conf
		ch, h, w   int32
		classes    int32
		numClients int
	}{
		{"grey", conf("synthetic", layout, true), 1, 28, 28, 4, 3},
		{"femnist", conf("femnist", layout, false), 3, 32, 32, 62, 4},
		{"cifar10", conf("cifar10", cifar, false), 3, 32, 32, 10, 4},
	} {
		ex, err := New(Options{Conf: tc.c, Rank: 1, Backend: cpu.New})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		info := ex.info
		if info.GetChannels() != tc.ch || info.GetHeight() != tc.h || info.GetWidth() != tc.w || info.GetClasses() != tc.classes || len(info.GetClientSamples()) != tc.numClients {
			t.Errorf("%s: registers %dx%dx%d, %d classes, %d clients", tc.name, info.GetChannels(), info.GetHeight(), info.GetWidth(), info.GetClasses(), len(info.GetClientSamples()))
		}
	}
}

func TestNewDataErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    config.Conf
		want string
	}{
		{"cifar10 without batches", conf("cifar10", t.TempDir(), false), "job_conf.data_dir: data_dir %s: CIFAR-10 batches missing"},
		{"unknown data set", conf("synthetic", t.TempDir(), false), "job_conf.data_set: unknown data set \"synthetic\""},
		{"wrong case", conf("mnist", t.TempDir(), false), `FedScale spells it "Mnist"`},
	} {
		want := strings.Replace(tc.want, "%s", tc.c.DataDir, 1)
		_, err := New(Options{Conf: tc.c, Rank: 1, Backend: cpu.New})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, want)
		}
	}
	// The error names every missing batch file at once.
	_, err := New(Options{Conf: conf("cifar10", t.TempDir(), false), Rank: 1, Backend: cpu.New})
	if err == nil || !strings.Contains(err.Error(), "{data_batch_1,data_batch_2,data_batch_3,data_batch_4,data_batch_5,test_batch}") {
		t.Errorf("missing batches not all named: %v", err)
	}
}

func loadFor(t *testing.T, dataSet, dir string, grey bool) *data.Dataset {
	t.Helper()
	ds, err := data.Open(data.Options{DataSet: dataSet, DataDir: dir, Grey: grey, Clients: 4})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// A task's batches are a pure function of its seed, augmentation included:
// the same seed gives bit-identical batches (on any executor: nothing else
// enters), another seed others.
func TestClientBatchesDeterministic(t *testing.T) {
	layout, cifar := layoutDir(t), cifarDir(t)
	for _, tc := range []struct {
		name string
		ds   *data.Dataset
	}{
		{"grey", loadFor(t, "synthetic", layout, true)},
		{"femnist", loadFor(t, "femnist", layout, false)},
		{"cifar10", loadFor(t, "cifar10", cifar, false)},
	} {
		samples := tc.ds.Train.ClientSamples[1]
		a, err := clientBatches(tc.ds, samples, 4, 5, 42)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := clientBatches(tc.ds, samples, 4, 5, 42)
		c, _ := clientBatches(tc.ds, samples, 4, 5, 43)
		same := func(x, y []model.Batch) bool {
			for i := range x {
				if !slices.Equal(x[i].X, y[i].X) || !slices.Equal(x[i].Y, y[i].Y) {
					return false
				}
			}
			return true
		}
		if !same(a, b) {
			t.Errorf("%s: the same seed gave different batches", tc.name)
		}
		if same(a, c) {
			t.Errorf("%s: seeds 42 and 43 gave the same batches", tc.name)
		}
		if got, want := len(a[0].X), 4*tc.ds.Pipe().SampleSize(); got != want {
			t.Errorf("%s: batch of %d values, want %d", tc.name, got, want)
		}
	}
}

// The grey path feeds exactly what the executor fed before pipelines
// existed: the same permutation stream, pixel/255.
func TestClientBatchesGreyUnchanged(t *testing.T) {
	ds, err := data.Load(layoutDir(t), "")
	if err != nil {
		t.Fatal(err)
	}
	samples := ds.Train.ClientSamples[2]
	const bs, steps, seed = 5, 4, 7
	got, err := clientBatches(ds, samples, bs, steps, seed)
	if err != nil {
		t.Fatal(err)
	}
	// The previous implementation, inline.
	rng := mrand.New(mrand.NewPCG(seed, seed^0x5851f42d4c957f2d))
	perm := append([]int32(nil), samples...)
	shuffle := func() { rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] }) }
	shuffle()
	pos := 0
	for s := range steps {
		idx := make([]int32, bs)
		for k := range idx {
			if pos == len(perm) {
				shuffle()
				pos = 0
			}
			idx[k] = perm[pos]
			pos++
		}
		x := make([]float32, bs*ds.Height*ds.Width)
		labels, err := ds.Train.Batch(idx, x)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got[s].X, x) || !slices.Equal(got[s].Y, labels) {
			t.Fatalf("step %d differs from the grey path before pipelines", s)
		}
	}
}
