package device

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/fedscale/fedscale-go/runtime/model"
	"github.com/fedscale/fedscale-go/runtime/model/cpu"
	"github.com/fedscale/fedscale-go/runtime/tensor"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Choice
		err  bool
	}{
		{"auto", Choice{Kind: Auto, Ordinal: -1}, false},
		{"cpu", Choice{Kind: CPU, Ordinal: -1}, false},
		{"cuda", Choice{Kind: CUDA, Ordinal: -1}, false},
		{"cuda:3", Choice{Kind: CUDA, Ordinal: 3}, false},
		{"cuda:-1", Choice{}, true},
		{"cuda:x", Choice{}, true},
		{"cuda:1024", Choice{}, true},
		{"gpu", Choice{}, true},
		{"", Choice{}, true},
	} {
		got, err := Parse(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("Parse(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.err)
		}
		if err != nil && !strings.Contains(err.Error(), "--device") {
			t.Errorf("Parse(%q): the error does not name the flag: %v", tc.in, err)
		}
		if err == nil {
			if back, _ := Parse(got.String()); back != got {
				t.Errorf("%v does not round-trip through %q", got, got.String())
			}
		}
	}
	if c := FromConf(false, 2); c != (Choice{Kind: CPU, Ordinal: -1}) {
		t.Errorf("use_cuda false: %v", c)
	}
	if c := FromConf(true, 2); c != (Choice{Kind: Auto, Ordinal: 2}) {
		t.Errorf("use_cuda true, cuda_device 2: %v", c)
	}
}

// gpuOf is a GPU backend made of a trainer factory: the CPU backend itself
// (which must pass the self-check), or one whose updates are off.
type gpuOf struct {
	name string
	nt   NewTrainer
}

func (g gpuOf) String() string                          { return g.name }
func (g gpuOf) New(s model.Spec) (model.Trainer, error) { return g.nt(s) }
func opener(g GPU) Opener                               { return func(int) (GPU, error) { return g, nil } }

// oneGPU opens g as cuda:0, the only GPU the process sees.
func oneGPU(g GPU) Opener {
	return func(n int) (GPU, error) {
		if n != 0 {
			return nil, fmt.Errorf("cuda:%d: %w: 1 GPU(s) visible", n, ErrNotVisible)
		}
		return g, nil
	}
}

func noDriver(int) (GPU, error) { return nil, errors.New("CUDA driver: libcuda.so.1 missing") }
func logTo(lines *[]string) func(string, ...any) {
	return func(f string, a ...any) { *lines = append(*lines, fmt.Sprintf(f, a...)) }
}
func cpuNew(s model.Spec) (model.Trainer, error) { return cpu.New(s) }

// skewed trains like the CPU backend, then moves every weight by 1%.
type skewed struct{ model.Trainer }

func (s skewed) Train(p tensor.List, b []model.Batch, o model.SGD) (model.TrainStats, error) {
	st, err := s.Trainer.Train(p, b, o)
	for _, t := range p {
		for i := range t.Data {
			t.Data[i] *= 1.01
		}
	}
	return st, err
}

func TestSelect(t *testing.T) {
	spec := model.Spec{Name: model.LeNet5, Channels: 1, Height: 28, Width: 28, Classes: 10}
	good := gpuOf{"cuda:0 same", cpuNew}
	bad := gpuOf{"cuda:0 skewed", func(s model.Spec) (model.Trainer, error) {
		tr, err := cpu.New(s)
		return skewed{tr}, err
	}}
	for _, tc := range []struct {
		name   string
		choice Choice
		open   Opener
		err    string // from Select
		desc   string
		newErr string // from the factory's first trainer
		logHas string
	}{
		{"cpu", Choice{Kind: CPU, Ordinal: -1}, opener(good), "", "cpu", "", ""},
		{"cuda without the backend", Choice{Kind: CUDA, Ordinal: -1}, nil, "built without the CUDA backend", "", "", ""},
		{"auto without the backend", Choice{Kind: Auto, Ordinal: -1}, nil, "", "cpu", "", "built without the CUDA backend"},
		{"cuda without a driver", Choice{Kind: CUDA, Ordinal: 1}, noDriver, "--device cuda:1: CUDA driver: libcuda.so.1 missing", "", "", ""},
		{"auto without a driver", Choice{Kind: Auto, Ordinal: -1}, noDriver, "", "cpu", "", "training on the CPU: CUDA driver"},
		{"auto, agreeing GPU", Choice{Kind: Auto, Ordinal: -1}, opener(good), "", "cuda:0 same", "", "agrees with the CPU backend"},
		{"cuda, disagreeing GPU", Choice{Kind: CUDA, Ordinal: -1}, opener(bad), "", "cuda:0 skewed", "refusing cuda:0 skewed", ""},
		{"slot GPU not visible", Choice{Kind: Auto, Ordinal: 1, Slot: true}, oneGPU(good), "", "cuda:0 same", "", "puts this executor on GPU 1 of its host, which it does not see"},
		{"explicit GPU not visible", Choice{Kind: CUDA, Ordinal: 1}, oneGPU(good), "--device cuda:1: cuda:1: no such GPU visible", "", "", ""},
		{"auto, disagreeing GPU", Choice{Kind: Auto, Ordinal: -1}, opener(bad), "", "cuda:0 skewed", "", "refusing cuda:0 skewed for lenet5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var lines []string
			nt, desc, err := Select(tc.choice, tc.open, cpuNew, logTo(&lines))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Select: %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || desc != tc.desc {
				t.Fatalf("Select = %q, %v; want %q", desc, err, tc.desc)
			}
			tr, err := nt(spec)
			if tc.newErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.newErr) {
					t.Fatalf("first trainer: %v, want %q", err, tc.newErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, skew := tr.(skewed); skew {
				t.Error("a disagreeing GPU's trainer was handed out")
			}
			if log := strings.Join(lines, "\n"); tc.logHas != "" && !strings.Contains(log, tc.logHas) {
				t.Errorf("log %q, want %q", log, tc.logHas)
			}
		})
	}
}

func TestCompareNaN(t *testing.T) {
	a := model.TrainStats{Losses: []float64{1}}
	b := model.TrainStats{Losses: []float64{1}}
	p := tensor.List{tensor.New("w", 2)}
	q := p.Clone()
	if err := Compare(a, b, p, q, 1e-5, 1e-4); err != nil {
		t.Fatal(err)
	}
	q[0].Data[1] = float32(nan())
	if err := Compare(a, b, p, q, 1e-5, 1e-4); err == nil || !strings.Contains(err.Error(), `"w"[1]`) {
		t.Errorf("NaN weight: %v", err)
	}
	b.Losses[0] = nan()
	if err := Compare(a, b, p, p, 1e-5, 1e-4); err == nil || !strings.Contains(err.Error(), "step 0") {
		t.Errorf("NaN loss: %v", err)
	}
}

func nan() float64 { var z float64; return z / z }
