package cuda

import (
	"strings"
	"testing"

	"github.com/fedscale/fedscale-go/runtime/device"
	"github.com/fedscale/fedscale-go/runtime/model"
	"github.com/fedscale/fedscale-go/runtime/model/cpu"
	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// batchOf is a reproducible batch of n samples of spec.
func batchOf(spec model.Spec, n int, seed uint64) model.Batch {
	b := model.Batch{N: n, X: make([]float32, n*spec.InputSize()), Y: make([]int32, n)}
	for i := range b.X {
		b.X[i] = model.DropoutUniform(seed, 1, 2, i)
	}
	for i := range b.Y {
		b.Y[i] = int32(float32(spec.Classes) * model.DropoutUniform(seed, 3, 4, i))
	}
	return b
}

// TestTrainerMatchesCPU trains every architecture on the emulated device
// and with the CPU backend from the same weights, FedProx and momentum on.
// The kernels repeat the CPU backend's arithmetic in its order, and the
// emulated matrix product is the CPU's (one fused multiply-add chain per
// output), so the results agree to rounding: per-step losses within 1e-9
// relative, weights within 1e-6 of each tensor's scale, evaluation the
// same. (On amd64 they are bit-identical; the margin is for libm's exp and
// log and for a Go compiler that fuses multiply-adds, as on arm64.)
func TestTrainerMatchesCPU(t *testing.T) {
	e := newEmu(t)
	for _, tc := range []struct {
		spec model.Spec
		n    int
		deep bool
		prox bool
	}{
		{model.Spec{Name: model.Logistic, Channels: 1, Height: 8, Width: 8, Classes: 4}, 5, false, true},
		{model.Spec{Name: model.MLP, Channels: 1, Height: 10, Width: 10, Classes: 7}, 4, false, false},
		{model.Spec{Name: model.LR, Channels: 2, Height: 6, Width: 6, Classes: 3}, 3, false, false},
		{model.Spec{Name: model.SVM, Channels: 1, Height: 5, Width: 5, Classes: 4}, 3, false, true},
		{model.Spec{Name: model.LeNet5, Channels: 1, Height: 28, Width: 28, Classes: 10}, 4, false, true},
		{model.Spec{Name: model.ResNet18, Channels: 3, Height: 32, Width: 32, Classes: 10}, 2, true, true},
		{model.Spec{Name: model.MobileNetV2, Channels: 3, Height: 32, Width: 32, Classes: 10}, 2, true, false},
		{model.Spec{Name: model.ShuffleNetV2x0_5, Channels: 3, Height: 32, Width: 32, Classes: 10}, 2, true, false},
	} {
		t.Run(tc.spec.Name, func(t *testing.T) {
			if testing.Short() && tc.deep {
				t.Skip("deep network on the emulated device")
			}
			init, err := model.Init(tc.spec, 11)
			if err != nil {
				t.Fatal(err)
			}
			batches := []model.Batch{batchOf(tc.spec, tc.n, 1), batchOf(tc.spec, tc.n, 2), batchOf(tc.spec, tc.n, 3)}
			opt := model.SGD{LR: 0.05, Momentum: 0.9, WeightDecay: 5e-4, LossDecay: 0.2, Seed: 9}
			if tc.prox {
				opt.ProxMu, opt.Anchor = 0.1, init.Clone()
			}
			gt, err := newTrainer(e, tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			defer gt.Close()
			ct, err := cpu.New(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			gp, cp := init.Clone(), init.Clone()
			gst, err := gt.Train(gp, batches, opt)
			if err != nil {
				t.Fatal(err)
			}
			cst, err := ct.Train(cp, batches, opt)
			if err != nil {
				t.Fatal(err)
			}
			if err := device.Compare(cst, gst, cp, gp, 1e-9, 1e-6); err != nil {
				t.Errorf("after %d steps: %v (losses %v, the CPU's %v)", len(batches), err, gst.Losses, cst.Losses)
			}
			test := batchOf(tc.spec, 7, 5)
			ge, err := gt.Evaluate(cp, test)
			if err != nil {
				t.Fatal(err)
			}
			ce, err := ct.Evaluate(cp, test)
			if err != nil {
				t.Fatal(err)
			}
			if ge.Count != ce.Count || ge.Top1 != ce.Top1 || ge.Top5 != ce.Top5 || !close(ge.LossSum, ce.LossSum, 1e-9) {
				t.Errorf("Evaluate = %+v, the CPU's %+v", ge, ce)
			}
			if gt.Held() == 0 {
				t.Error("the trainer reports no device memory held")
			}
		})
	}
}

func close(a, b, rel float64) bool {
	if a != a || b != b {
		return a != a && b != b // NaN only where the CPU has one
	}
	d := a - b
	if d < 0 {
		d = -d
	}
	m := b
	if m < 0 {
		m = -m
	}
	return d <= rel*max(m, 1e-6)
}

// Bad input is refused before the device is touched, naming what is wrong,
// and a diverging step is an error, as on the CPU.
func TestTrainerErrors(t *testing.T) {
	e := newEmu(t)
	spec := model.Spec{Name: model.Logistic, Channels: 1, Height: 4, Width: 4, Classes: 3}
	tr, err := newTrainer(e, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	p, _ := model.Init(spec, 1)
	opt := model.SGD{LR: 0.1}
	for _, tc := range []struct {
		name    string
		params  tensor.List
		batches []model.Batch
		opt     model.SGD
		want    string
	}{
		{"no batches", p, nil, opt, "no batches"},
		{"wrong params", p[:1], []model.Batch{batchOf(spec, 2, 1)}, opt, "params do not match"},
		{"bad label", p, []model.Batch{{N: 1, X: make([]float32, 16), Y: []int32{3}}}, opt, "label 3 out of range"},
		{"negative lr", p, []model.Batch{batchOf(spec, 2, 1)}, model.SGD{LR: -1}, "learning rate"},
		{"diverging", p, []model.Batch{batchOf(spec, 2, 1), batchOf(spec, 2, 2)}, model.SGD{LR: 1e30, WeightDecay: 1}, "diverged"},
	} {
		_, err := tr.Train(tc.params.Clone(), tc.batches, tc.opt)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "cuda logistic") {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// A trainer bounded below what its batch needs fails with an error naming
// the model, the batch and the bound, and holds nothing it was refused.
func TestTrainerMemoryBound(t *testing.T) {
	e := newEmu(t)
	spec := model.Spec{Name: model.LeNet5, Channels: 1, Height: 28, Width: 28, Classes: 10}
	p, _ := model.Init(spec, 1)
	small, err := newTrainer(e, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	if _, err := small.Train(p.Clone(), []model.Batch{batchOf(spec, 2, 1)}, model.SGD{LR: 0.1}); err != nil {
		t.Fatal(err)
	}
	need := small.Held()
	bounded, err := newTrainer(e, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer bounded.Close()
	bounded.limit = need // enough for batch 2, not for 64
	if _, err := bounded.Train(p.Clone(), []model.Batch{batchOf(spec, 2, 1)}, model.SGD{LR: 0.1}); err != nil {
		t.Fatalf("within the bound: %v", err)
	}
	_, err = bounded.Train(p.Clone(), []model.Batch{batchOf(spec, 64, 1)}, model.SGD{LR: 0.1})
	if err == nil || !strings.Contains(err.Error(), "cuda lenet5") || !strings.Contains(err.Error(), "a batch of 64") || !strings.Contains(err.Error(), "--gpu-memory-mb") {
		t.Errorf("over the bound: %v", err)
	}
	if bounded.Held() > need {
		t.Errorf("holds %d bytes, over its bound %d", bounded.Held(), need)
	}
	// The refused batch left nothing half-allocated: the trainer trains
	// again within its bound, as before, and after Close.
	again := p.Clone()
	if _, err := bounded.Train(again, []model.Batch{batchOf(spec, 2, 1)}, model.SGD{LR: 0.1}); err != nil {
		t.Fatalf("after the refusal: %v", err)
	}
	if err := bounded.Close(); err != nil || bounded.Held() != 0 {
		t.Fatalf("Close: %v, %d bytes still held", err, bounded.Held())
	}
	after := p.Clone()
	if _, err := bounded.Train(after, []model.Batch{batchOf(spec, 2, 1)}, model.SGD{LR: 0.1}); err != nil {
		t.Fatalf("after Close: %v", err)
	}
	for i := range again {
		for j, v := range again[i].Data {
			if v != after[i].Data[j] {
				t.Fatalf("training after Close differs: %s[%d]", again[i].Name, j)
			}
		}
	}
}

// emuGPU is the emulated device as a device.GPU whose products round
// unlike the CPU backend's (no fused multiply-adds, summed backwards), as
// cuBLAS's do.
type emuGPU struct{ e *emuDev }

func (g emuGPU) String() string { return "emulated GPU (reordered products)" }
func (g emuGPU) New(spec model.Spec) (model.Trainer, error) {
	return newTrainer(g.e, spec)
}

// The start-up self-check must pass a correct GPU whose rounding differs
// from the CPU backend's, for every architecture at its data set's input
// size (a spurious refusal would send every GPU job to the CPU), and
// refuse one that loses the input gradients of its products.
func TestSelfCheckToleratesRounding(t *testing.T) {
	base := newEmu(t)
	e, broken := base.with(true, false), base.with(true, true)
	for _, spec := range []model.Spec{
		{Name: model.LeNet5, Channels: 1, Height: 28, Width: 28, Classes: 62},
		{Name: model.ResNet18, Channels: 3, Height: 32, Width: 32, Classes: 10},
		{Name: model.MobileNetV2, Channels: 3, Height: 32, Width: 32, Classes: 10},
		{Name: model.ShuffleNetV2x0_5, Channels: 3, Height: 32, Width: 32, Classes: 10},
	} {
		if testing.Short() && spec.Name != model.LeNet5 {
			continue
		}
		cpuNew := func(s model.Spec) (model.Trainer, error) { return cpu.New(s) }
		if err := device.SelfCheck(spec, emuGPU{e}.New, cpuNew); err != nil {
			t.Errorf("%s: %v", spec, err)
		}
		if err := device.SelfCheck(spec, emuGPU{broken}.New, cpuNew); err == nil {
			t.Errorf("%s: a GPU without input gradients passed the self-check", spec)
		} else {
			t.Logf("%s, broken GPU: %v", spec.Name, err)
		}
	}
}

// TestBackendLimit: --gpu-memory-mb wins; else the memory free at Open is
// shared equally by the trainers on the device.
func TestBackendLimit(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		limit, free uint64
		share       int
		want        uint64
	}{
		{limit: 512 * mib, free: 8192 * mib, share: 8, want: 512 * mib},
		{free: 8192 * mib, share: 8, want: 1024 * mib},
		{free: 8192 * mib, share: 1, want: 8192 * mib},
		{free: 8192 * mib, share: 0, want: 8192 * mib},
	} {
		b := &Backend{Limit: tc.limit, Share: tc.share, free: tc.free}
		if got := b.limit(); got != tc.want {
			t.Errorf("Limit %d MiB, %d MiB free, share %d: %d MiB a trainer, want %d", tc.limit/mib, tc.free/mib, tc.share, got/mib, tc.want/mib)
		}
	}
}
