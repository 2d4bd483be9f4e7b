package cuda

import (
	"math"
	"os"
	"testing"
	"time"

	"github.com/fedscale/fedscale-go/runtime/device"
	"github.com/fedscale/fedscale-go/runtime/model"
	"github.com/fedscale/fedscale-go/runtime/model/cpu"
)

// GPUCheckEnv turns on the checks that need an NVIDIA GPU
// (scripts/gpu-check.sh sets it); without it they are skipped, with it a
// missing GPU fails them.
const GPUCheckEnv = "FEDSCALE_GPU_CHECK"

// gpuBackend opens cuda:$FEDSCALE_GPU_ORDINAL (default 0) or skips.
func gpuBackend(t *testing.T) *Backend {
	t.Helper()
	if os.Getenv(GPUCheckEnv) == "" {
		t.Skipf("needs an NVIDIA GPU: run scripts/gpu-check.sh (sets %s=1)", GPUCheckEnv)
	}
	b, err := Open(0)
	if err != nil {
		t.Fatal(err)
	}
	free, total, _ := b.MemInfo()
	t.Logf("%s: kernels compiled for %s by %s; %d of %d MiB free", b, b.arch, b.nvrtc, free>>20, total>>20)
	return b
}

// TestGPUMatchesCPU is the hardware check: every architecture trains a few
// steps on the GPU and on the CPU backend from the same weights; per-step
// losses must agree within 1e-5 relative and the final weights within 1e-4
// of each tensor's scale (1e-3 for the deep networks, whose cuBLAS products
// sum in another order than the CPU's), a NaN anywhere failing; two GPU
// runs must give the same bits.
func TestGPUMatchesCPU(t *testing.T) {
	b := gpuBackend(t)
	for _, tc := range []struct {
		spec    model.Spec
		n       int
		weights float64
	}{
		{model.Spec{Name: model.Logistic, Channels: 1, Height: 28, Width: 28, Classes: 10}, 20, 1e-4},
		{model.Spec{Name: model.MLP, Channels: 1, Height: 28, Width: 28, Classes: 10}, 20, 1e-4},
		{model.Spec{Name: model.LR, Channels: 1, Height: 28, Width: 28, Classes: 10}, 20, 1e-4},
		{model.Spec{Name: model.SVM, Channels: 1, Height: 28, Width: 28, Classes: 10}, 20, 1e-4},
		{model.Spec{Name: model.LeNet5, Channels: 1, Height: 28, Width: 28, Classes: 10}, 20, 1e-4},
		{model.Spec{Name: model.ResNet18, Channels: 3, Height: 32, Width: 32, Classes: 10}, 20, 1e-3},
		{model.Spec{Name: model.ResNet34, Channels: 3, Height: 32, Width: 32, Classes: 10}, 8, 1e-3},
		{model.Spec{Name: model.ResNet50, Channels: 3, Height: 32, Width: 32, Classes: 10}, 8, 1e-3},
		{model.Spec{Name: model.MobileNetV2, Channels: 3, Height: 32, Width: 32, Classes: 10}, 8, 1e-3},
		{model.Spec{Name: model.ShuffleNetV2x0_5, Channels: 3, Height: 32, Width: 32, Classes: 10}, 8, 1e-3},
		{model.Spec{Name: model.ShuffleNetV2x2_0, Channels: 3, Height: 32, Width: 32, Classes: 10}, 8, 1e-3},
	} {
		t.Run(tc.spec.Name, func(t *testing.T) {
			init, err := model.Init(tc.spec, 11)
			if err != nil {
				t.Fatal(err)
			}
			var batches []model.Batch
			for s := range 4 {
				batches = append(batches, batchOf(tc.spec, tc.n, uint64(s+1)))
			}
			opt := model.SGD{LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4, LossDecay: 0.2, Seed: 9, ProxMu: 0.01, Anchor: init.Clone()}
			gt, err := b.New(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			ct, err := cpu.New(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			gp, cp, gp2 := init.Clone(), init.Clone(), init.Clone()
			gst, err := gt.Train(gp, batches, opt)
			if err != nil {
				t.Fatal(err)
			}
			cst, err := ct.Train(cp, batches, opt)
			if err != nil {
				t.Fatal(err)
			}
			if err := device.Compare(cst, gst, cp, gp, 1e-5, tc.weights); err != nil {
				t.Errorf("GPU vs CPU: %v (losses %v, the CPU's %v)", err, gst.Losses, cst.Losses)
			}
			if _, err := gt.Train(gp2, batches, opt); err != nil {
				t.Fatal(err)
			}
			for i := range gp {
				for j, v := range gp[i].Data {
					if math.Float32bits(v) != math.Float32bits(gp2[i].Data[j]) {
						t.Fatalf("two GPU runs differ: %s[%d] %v vs %v", gp[i].Name, j, v, gp2[i].Data[j])
					}
				}
			}
			test := batchOf(tc.spec, 50, 77)
			ge, err := gt.Evaluate(cp, test)
			if err != nil {
				t.Fatal(err)
			}
			ce, _ := ct.Evaluate(cp, test)
			if ge.Top1 != ce.Top1 || !close(ge.LossSum, ce.LossSum, 1e-4) {
				t.Errorf("Evaluate = %+v, the CPU's %+v", ge, ce)
			}
		})
	}
}

// TestGPUThroughput prints resnet18's training speed at batch 20 on
// 32x32x3 (FedScale's CIFAR-10 setting): step time and client tasks per
// second (a task is local_steps = 20 steps), on the GPU and the CPU.
func TestGPUThroughput(t *testing.T) {
	b := gpuBackend(t)
	spec := model.Spec{Name: model.ResNet18, Channels: 3, Height: 32, Width: 32, Classes: 10}
	init, err := model.Init(spec, 1)
	if err != nil {
		t.Fatal(err)
	}
	const steps, localSteps = 20, 20
	var batches []model.Batch
	for s := range steps {
		batches = append(batches, batchOf(spec, 20, uint64(s)))
	}
	opt := model.SGD{LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4, LossDecay: 0.2}
	for _, be := range []struct {
		name string
		nt   func(model.Spec) (model.Trainer, error)
	}{{"cuda", b.New}, {"cpu", cpu.New}} {
		tr, err := be.nt(spec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tr.Train(init.Clone(), batches[:1], opt); err != nil { // warm-up
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := tr.Train(init.Clone(), batches, opt); err != nil {
			t.Fatal(err)
		}
		step := time.Since(start) / steps
		t.Logf("THROUGHPUT %s resnet18 batch 20 32x32x3: %.2f ms/step, %.2f client tasks/s (%d steps each)", be.name, float64(step.Microseconds())/1000, 1/(step.Seconds()*localSteps), localSteps)
	}
}
