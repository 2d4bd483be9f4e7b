package cpu

import (
	"math/rand/v2"
	"testing"

	"github.com/fedscale/fedscale-go/runtime/model"
)

// synthBatches returns count batches of n random 28x28-style samples with
// labels spread over the classes.
func synthBatches(spec model.Spec, count, n int, seed uint64) []model.Batch {
	rng := rand.New(rand.NewPCG(seed, 99))
	in := spec.InputSize()
	out := make([]model.Batch, count)
	for i := range out {
		b := model.Batch{X: make([]float32, n*in), Y: make([]int32, n), N: n}
		for j := range b.X {
			b.X[j] = rng.Float32()
		}
		for j := range b.Y {
			b.Y[j] = int32(rng.IntN(spec.Classes))
		}
		out[i] = b
	}
	return out
}

var benchSpecs = []model.Spec{
	{Name: model.Logistic, Channels: 1, Height: 28, Width: 28, Classes: 10},
	{Name: model.MLP, Channels: 1, Height: 28, Width: 28, Classes: 10},
	{Name: model.LeNet5, Channels: 1, Height: 28, Width: 28, Classes: 10},
}

// BenchmarkTrainTask times one client task: 10 local steps of batch 20.
func BenchmarkTrainTask(b *testing.B) {
	for _, spec := range benchSpecs {
		b.Run(spec.Name, func(b *testing.B) {
			tr, err := New(spec)
			if err != nil {
				b.Fatal(err)
			}
			global, err := model.Init(spec, 1)
			if err != nil {
				b.Fatal(err)
			}
			params := global.Clone()
			batches := synthBatches(spec, 10, 20, 2)
			opt := model.SGD{LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4, LossDecay: 0.2}
			// A first task sizes the scratch buffers, as in a long-lived executor.
			if _, err := tr.Train(params, batches, opt); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// Start each task from the global model, as the executor does.
				for j := range params {
					copy(params[j].Data, global[j].Data)
				}
				if _, err := tr.Train(params, batches, opt); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
		})
	}
}

// BenchmarkEvaluate times evaluation of a 128-sample test batch.
func BenchmarkEvaluate(b *testing.B) {
	for _, spec := range benchSpecs {
		b.Run(spec.Name, func(b *testing.B) {
			tr, err := New(spec)
			if err != nil {
				b.Fatal(err)
			}
			params, err := model.Init(spec, 1)
			if err != nil {
				b.Fatal(err)
			}
			batch := synthBatches(spec, 1, 128, 3)[0]
			if _, err := tr.Evaluate(params, batch); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := tr.Evaluate(params, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

// stepSpecs are the networks of the speed table beside PyTorch (make
// bench-torch): one training step of batch 20 on 3x32x32.
var stepSpecs = []model.Spec{
	{Name: model.ResNet18, Channels: 3, Height: 32, Width: 32, Classes: 62},
	{Name: model.MobileNetV2, Channels: 3, Height: 32, Width: 32, Classes: 10},
	{Name: model.ShuffleNetV2x2_0, Channels: 3, Height: 32, Width: 32, Classes: 10},
}

// BenchmarkTrainStep times one SGD step (forward, loss, backward, update)
// at batch 20, as scripts/golden/bench_torch.py does in PyTorch.
func BenchmarkTrainStep(b *testing.B) {
	for _, spec := range stepSpecs {
		b.Run(spec.Name, func(b *testing.B) {
			tr, err := New(spec)
			if err != nil {
				b.Fatal(err)
			}
			params, err := model.Init(spec, 1)
			if err != nil {
				b.Fatal(err)
			}
			batches := synthBatches(spec, 1, 20, 2)
			opt := model.SGD{LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4, LossDecay: 0.2, Seed: 1}
			if _, err := tr.Train(params, batches, opt); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := tr.Train(params, batches, opt); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/step")
		})
	}
}
