package golden

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fixtureDir holds the committed fixtures; the linear models' are small.
const fixtureDir = "../../runtime/model/cpu/testdata/golden"

func load(t *testing.T, model string) *Fixture {
	t.Helper()
	f, err := Load(filepath.Join(fixtureDir, model+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestSampleIndex(t *testing.T) {
	for _, c := range []struct {
		n, k int
		want []int
	}{
		{0, 64, []int{}},
		{1, 64, []int{0}},
		{3, 8, []int{0, 1, 2}},
		{8, 8, []int{0, 1, 2, 3, 4, 5, 6, 7}},
		{9, 8, []int{0, 1, 2, 3, 5, 6, 7, 8}}, // i*8/7 rounded half up
		{15, 8, []int{0, 2, 4, 6, 8, 10, 12, 14}},
	} {
		if got := SampleIndex(c.n, c.k); !slices.Equal(got, c.want) {
			t.Errorf("SampleIndex(%d, %d) = %v, want %v", c.n, c.k, got, c.want)
		}
	}
}

func TestTol(t *testing.T) {
	tol := Tol{Abs: 1e-6, Rel: 1e-3, Noise: 2, Chaos: 0.1}
	for _, c := range []struct {
		name                  string
		got, want, scale, dev float64
		close, chaotic        bool
	}{
		{"equal", 1, 1, 1, 0, true, false},
		{"within rel", 1.0009, 1, 1, 0, true, false},
		{"past rel", 1.0011, 1, 1, 0, false, false},
		{"noise widens", 1.003, 1, 1, 0.001, true, false},
		{"abs near zero", 5e-7, 0, 0, 0, true, false},
		{"chaotic", 3, 1, 1, 0.2, false, true},
		{"nan vs number", math.NaN(), 1, 1, 0, false, false},
		{"nan vs nan", math.NaN(), math.NaN(), 0, 0, true, false},
		{"inf", math.Inf(1), math.Inf(1), 0, 0, true, false},
	} {
		if got := tol.Close(c.got, c.want, c.scale, c.dev); got != c.close {
			t.Errorf("%s: Close = %v, want %v", c.name, got, c.close)
		}
		if got := tol.chaotic(c.scale, c.dev); got != c.chaotic {
			t.Errorf("%s: chaotic = %v, want %v", c.name, got, c.chaotic)
		}
	}
}

func TestLoadRejects(t *testing.T) {
	good, err := os.ReadFile(filepath.Join(fixtureDir, "logistic.json"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, c := range []struct {
		name, old, new, want string
	}{
		{"unknown field", `"model":"logistic"`, `"model":"logistic","extra":1`, "unknown field"},
		{"bad input", `"input":[1,28,28]`, `"input":[1,28]`, "input"},
		{"count", `"count":7840`, `"count":7841`, "count 7841"},
		{"labels", `"y":[3,0,7,4]`, `"y":[3,0,7]`, "labels"},
		{"label range", `"y":[3,0,7,4]`, `"y":[3,0,7,10]`, "out of range"},
		{"not json", `{`, `[`, "golden fixture"},
	} {
		text := strings.Replace(string(good), c.old, c.new, 1)
		if text == string(good) {
			t.Fatalf("%s: %q not in the fixture", c.name, c.old)
		}
		p := filepath.Join(dir, c.name+".json")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(p); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Load error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

func TestLoadRoundsToFloat32(t *testing.T) {
	f := load(t, "logistic")
	for _, v := range append(f.Runs[0].Losses, f.Initial[0].Values...) {
		if float64(float32(v)) != v {
			t.Fatalf("value %v is not a float32", v)
		}
	}
}

func TestDiff(t *testing.T) {
	want := load(t, "lenet5")
	for _, c := range []struct {
		name   string
		change func(f *Fixture)
		err    string // "" for none
		note   bool
	}{
		{"identical", func(*Fixture) {}, "", false},
		{"other torch", func(f *Fixture) { f.Torch = "2.0" }, "", true},
		{"loss drift", func(f *Fixture) { f.Runs[0].Losses[2] *= 1.001 }, "loss 2", false},
		{"rounding", func(f *Fixture) { f.Runs[0].Losses[2] *= 1 + 1e-7 }, "", false},
		{"state drift", func(f *Fixture) { f.Runs[1].Final[0].Values[3] += 1e-3 }, "conv1.weight[", false},
		{"labels", func(f *Fixture) { f.TrainBatch.Y[0]++ }, "train_batch labels", false},
		{"generator", func(f *Fixture) { f.Initial[2].Values[0] = 0.5 }, "initial conv2.weight", false},
		{"hyper-parameter", func(f *Fixture) { f.LR = 0.1 }, "lr", false},
		{"eval hits", func(f *Fixture) { f.Runs[2].Eval.Top5++ }, "top5", false},
	} {
		got := load(t, "lenet5")
		c.change(got)
		notes, err := Diff(got, want, DefaultDiffTol)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.err)
		}
		if (len(notes) > 0) != c.note {
			t.Errorf("%s: notes %q", c.name, notes)
		}
	}
}
