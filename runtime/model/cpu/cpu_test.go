package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/fedscale/fedscale-go/runtime/model"
	"github.com/fedscale/fedscale-go/runtime/tensor"
)

func TestNew(t *testing.T) {
	tests := []struct {
		spec    model.Spec
		wantErr string
	}{
		{model.Spec{Name: model.MLP, Channels: 1, Height: 28, Width: 28, Classes: 62}, ""},
		{model.Spec{Name: model.LeNet5, Channels: 3, Height: 32, Width: 32, Classes: 10}, ""},
		{model.Spec{Name: model.ResNet18, Channels: 3, Height: 32, Width: 32, Classes: 62}, ""},
		{model.Spec{Name: model.MobileNetV2, Channels: 3, Height: 32, Width: 32, Classes: 10}, ""},
		{model.Spec{Name: model.ShuffleNetV2x2_0, Channels: 3, Height: 32, Width: 32, Classes: 10}, ""},
		{model.Spec{Name: "resnet19", Channels: 3, Height: 32, Width: 32, Classes: 10}, `unknown model "resnet19" (supported: lenet5, logistic, lr, mlp, mobilenet_v2, resnet18`},
		{model.Spec{Name: model.ResNet18, Channels: 1, Height: 28, Width: 28, Classes: 10}, "takes 3-channel (RGB) images"},
		{model.Spec{Name: model.LeNet5, Channels: 1, Height: 11, Width: 28, Classes: 10}, "too small"},
		{model.Spec{Name: model.Logistic, Channels: 1, Height: 28, Width: 28, Classes: 1}, "at least 2"},
	}
	for _, tc := range tests {
		t.Run(tc.spec.String(), func(t *testing.T) {
			tr, err := New(tc.spec)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New: error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tr.Spec() != tc.spec {
				t.Errorf("Spec() = %v, want %v", tr.Spec(), tc.spec)
			}
		})
	}
}

// TestEvaluateHandMadeLogits sets the weights to zero so the logits are
// the bias, then checks ranks, the tie rule and the loss by hand.
func TestEvaluateHandMadeLogits(t *testing.T) {
	tests := []struct {
		name   string
		logits []float32
		labels []int32
		top1   int64
		top5   int64
	}{
		// Ranks of labels 4,1,2,6,0,5,3 are 0,1,2 (tie with class 1 goes
		// to the lower class),3,4,5,6.
		{"seven classes", []float32{0.5, 2, 2, -1, 3, 0, 1}, []int32{4, 1, 2, 6, 0, 5, 3}, 1, 5},
		// Top-5 of three classes is top-3: everything hits.
		{"three classes", []float32{1, 3, 2}, []int32{0, 1, 2}, 1, 3},
		// All equal: only class 0 ranks first; 0..4 are in the top 5.
		{"all tied", []float32{1, 1, 1, 1, 1, 1}, []int32{5, 0, 4, 1}, 1, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := len(tc.logits)
			spec := model.Spec{Name: model.Logistic, Channels: 1, Height: 1, Width: 1, Classes: c}
			tr, err := New(spec)
			if err != nil {
				t.Fatal(err)
			}
			p, err := model.Zeros(spec)
			if err != nil {
				t.Fatal(err)
			}
			copy(p[1].Data, tc.logits)
			n := len(tc.labels)
			b := model.Batch{X: make([]float32, n), Y: tc.labels, N: n}
			for i := range b.X {
				b.X[i] = float32(i) // ignored: the weights are zero
			}
			st, err := tr.Evaluate(p, b)
			if err != nil {
				t.Fatal(err)
			}
			var lse, zsum float64
			for _, z := range tc.logits {
				lse += math.Exp(float64(z))
			}
			for _, y := range tc.labels {
				zsum += float64(tc.logits[y])
			}
			wantLoss := float64(n)*math.Log(lse) - zsum
			if st.Top1 != tc.top1 || st.Top5 != tc.top5 || st.Count != int64(n) {
				t.Errorf("top1 %d top5 %d count %d, want %d %d %d", st.Top1, st.Top5, st.Count, tc.top1, tc.top5, n)
			}
			if !closeEnough(st.LossSum, wantLoss, 1e-9, 1e-9) {
				t.Errorf("loss sum %v, want %v", st.LossSum, wantLoss)
			}
		})
	}
}

func TestScoreNaN(t *testing.T) {
	var st model.EvalStats
	score(&st, []float32{float32(math.NaN()), 1, 2}, []int32{0}, 3, 3)
	if st.Top1 != 0 || st.Top5 != 0 || st.Count != 1 || !math.IsNaN(st.LossSum) {
		t.Errorf("NaN label logit: %+v, want no hits and a NaN loss", st)
	}
}

// TestBadInput checks that every malformed call is refused with an error
// naming the problem, and that Train leaves params untouched.
func TestBadInput(t *testing.T) {
	spec := model.Spec{Name: model.MLP, Channels: 1, Height: 4, Width: 4, Classes: 3}
	good, err := model.Init(spec, 1)
	if err != nil {
		t.Fatal(err)
	}
	batch := synthBatches(spec, 1, 4, 1)[0]
	opt := model.SGD{LR: 0.1}
	tests := []struct {
		name    string
		params  func(tensor.List) tensor.List
		batch   func(model.Batch) model.Batch
		opt     func(model.SGD) model.SGD
		evalToo bool
		wantErr string
	}{
		{name: "missing tensor", params: func(p tensor.List) tensor.List { return p[:len(p)-1] }, evalToo: true, wantErr: "tensor count"},
		{name: "wrong name", params: func(p tensor.List) tensor.List { p[2].Name = "fc9.weight"; return p }, evalToo: true, wantErr: `"fc9.weight"`},
		{name: "wrong shape", params: func(p tensor.List) tensor.List {
			p[0] = tensor.New("fc1.weight", 200, 15)
			return p
		}, evalToo: true, wantErr: "shape [200 15]"},
		{name: "short data", params: func(p tensor.List) tensor.List { p[1].Data = p[1].Data[:10]; return p }, evalToo: true, wantErr: "values for shape"},
		{name: "label too large", batch: func(b model.Batch) model.Batch { b.Y = []int32{0, 1, 3, 2}; return b }, evalToo: true, wantErr: "label 3 out of range [0,3)"},
		{name: "negative label", batch: func(b model.Batch) model.Batch { b.Y = []int32{0, -1, 2, 2}; return b }, evalToo: true, wantErr: "label -1"},
		{name: "short X", batch: func(b model.Batch) model.Batch { b.X = b.X[:len(b.X)-1]; return b }, evalToo: true, wantErr: "input values for 4 samples"},
		{name: "N too large", batch: func(b model.Batch) model.Batch { b.N = 5; return b }, evalToo: true, wantErr: "4 labels for 5 samples"},
		{name: "negative N", batch: func(b model.Batch) model.Batch { b.N = -1; return b }, evalToo: true, wantErr: "negative"},
		{name: "empty batch", batch: func(b model.Batch) model.Batch { return model.Batch{} }, wantErr: "batch 1 is empty"},
		{name: "prox without anchor", opt: func(o model.SGD) model.SGD { o.ProxMu = 0.1; return o }, wantErr: "Anchor"},
		{name: "anchor mismatch", opt: func(o model.SGD) model.SGD {
			o.ProxMu, o.Anchor = 0.1, good.Clone()[:3]
			return o
		}, wantErr: "anchor does not match"},
		{name: "negative lr", opt: func(o model.SGD) model.SGD { o.LR = -1; return o }, wantErr: "learning rate"},
		{name: "NaN momentum", opt: func(o model.SGD) model.SGD { o.Momentum = float32(math.NaN()); return o }, wantErr: "momentum"},
		{name: "loss decay above 1", opt: func(o model.SGD) model.SGD { o.LossDecay = 1.5; return o }, wantErr: "loss decay"},
	}
	tr, err := New(spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, b, o := good.Clone(), batch, opt
			b.X, b.Y = append([]float32(nil), b.X...), append([]int32(nil), b.Y...)
			if tc.params != nil {
				p = tc.params(p)
			}
			if tc.batch != nil {
				b = tc.batch(b)
			}
			if tc.opt != nil {
				o = tc.opt(o)
			}
			before := p.Clone()
			_, err := tr.Train(p, []model.Batch{batch, b}, o)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Train: error %v, want one containing %q", err, tc.wantErr)
			}
			for i := range p {
				for j := range p[i].Data {
					if p[i].Data[j] != before[i].Data[j] {
						t.Fatalf("Train changed %s after refusing the task", p[i].Name)
					}
				}
			}
			if tc.evalToo {
				if _, err := tr.Evaluate(p, b); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Evaluate: error %v, want one containing %q", err, tc.wantErr)
				}
			}
		})
	}
	if _, err := tr.Train(good.Clone(), nil, opt); err == nil || !strings.Contains(err.Error(), "no batches") {
		t.Errorf("Train without batches: error %v", err)
	}
	if st, err := tr.Evaluate(good, model.Batch{}); err != nil || st != (model.EvalStats{}) {
		t.Errorf("Evaluate of an empty batch: %+v, %v; want zero stats", st, err)
	}
}

// TestDivergenceIsAnError checks that a step whose loss is not finite
// stops training with an error instead of spreading NaN weights.
func TestDivergenceIsAnError(t *testing.T) {
	tr, err := New(tinySpec)
	if err != nil {
		t.Fatal(err)
	}
	p := tinyParams()
	batches := make([]model.Batch, 10)
	for i := range batches {
		batches[i] = tinyBatch
	}
	// Weight decay at this rate multiplies the weights by about -1e10 a
	// step: they overflow within a few steps.
	st, err := tr.Train(p, batches, model.SGD{LR: 1e10, WeightDecay: 1})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("step %d: loss is", st.Steps)) {
		t.Fatalf("error %v after %d steps, want a non-finite loss at the step after them", err, st.Steps)
	}
	if st.Steps == 0 || st.Steps == len(batches) {
		t.Errorf("stats report %d steps: the test no longer diverges part way", st.Steps)
	}
	t.Log(err)
}

// TestOverflowOnLastStepIsAnError checks the weights themselves: a final
// update that overflows has no later loss to reveal it.
func TestOverflowOnLastStepIsAnError(t *testing.T) {
	tr, err := New(tinySpec)
	if err != nil {
		t.Fatal(err)
	}
	p := tinyParams()
	p[0].Data[0] = 3e38 // finite, but its weight decay term 1.5*3e38 overflows float32
	_, err = tr.Train(p, []model.Batch{tinyBatch}, model.SGD{LR: 1, WeightDecay: 1.5})
	if err == nil || !strings.Contains(err.Error(), "after step 0") || !strings.Contains(err.Error(), "non-finite") {
		t.Fatalf("error %v, want non-finite weights after step 0", err)
	}
}

var detSpecs = []model.Spec{
	{Name: model.Logistic, Channels: 1, Height: 28, Width: 28, Classes: 10},
	{Name: model.MLP, Channels: 1, Height: 28, Width: 28, Classes: 62},
	{Name: model.LeNet5, Channels: 1, Height: 28, Width: 28, Classes: 10},
}

type outcome struct {
	params tensor.List
	train  model.TrainStats
	eval   model.EvalStats
}

func runTask(t *testing.T, spec model.Spec) outcome {
	tr, err := New(spec)
	if err != nil {
		t.Error(err)
		return outcome{}
	}
	global, err := model.Init(spec, 42)
	if err != nil {
		t.Error(err)
		return outcome{}
	}
	p := global.Clone()
	// Uneven batch sizes exercise every blocking remainder.
	batches := append(synthBatches(spec, 2, 7, 1), synthBatches(spec, 2, 20, 2)...)
	opt := model.SGD{LR: 0.05, Momentum: 0.9, WeightDecay: 5e-4, ProxMu: 0.01, Anchor: global, LossDecay: 0.2}
	ts, err := tr.Train(p, batches, opt)
	if err != nil {
		t.Error(err)
	}
	es, err := tr.Evaluate(p, synthBatches(spec, 1, 150, 3)[0])
	if err != nil {
		t.Error(err)
	}
	return outcome{p, ts, es}
}

func sameOutcome(t *testing.T, what string, a, b outcome) {
	t.Helper()
	if !reflect.DeepEqual(a.train, b.train) || a.eval != b.eval {
		t.Fatalf("%s: stats differ: %+v %+v vs %+v %+v", what, a.train, a.eval, b.train, b.eval)
	}
	for i := range a.params {
		for j, v := range a.params[i].Data {
			if math.Float32bits(v) != math.Float32bits(b.params[i].Data[j]) {
				t.Fatalf("%s: %s[%d] differs: %v vs %v", what, a.params[i].Name, j, v, b.params[i].Data[j])
			}
		}
	}
}

// TestDeterminism checks bit-identical results across runs, GOMAXPROCS
// settings and concurrent trainers.
func TestDeterminism(t *testing.T) {
	for _, spec := range detSpecs {
		t.Run(spec.Name, func(t *testing.T) {
			prev := runtime.GOMAXPROCS(1)
			ref := runTask(t, spec)
			runtime.GOMAXPROCS(max(prev, 4))
			sameOutcome(t, "GOMAXPROCS 4", ref, runTask(t, spec))
			runtime.GOMAXPROCS(prev)

			var wg sync.WaitGroup
			outs := make([]outcome, 3)
			for i := range outs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					outs[i] = runTask(t, spec)
				}()
			}
			wg.Wait()
			for _, o := range outs {
				sameOutcome(t, "concurrent", ref, o)
			}
		})
	}
}

// TestEvaluateIsPerSample checks that a sample's result does not depend on
// the batch around it: one call over 150 samples (several internal chunks)
// equals the sum of 150 single-sample calls, bit for bit.
func TestEvaluateIsPerSample(t *testing.T) {
	for _, spec := range detSpecs {
		t.Run(spec.Name, func(t *testing.T) {
			tr, err := New(spec)
			if err != nil {
				t.Fatal(err)
			}
			p, err := model.Init(spec, 9)
			if err != nil {
				t.Fatal(err)
			}
			b := synthBatches(spec, 1, 150, 4)[0]
			whole, err := tr.Evaluate(p, b)
			if err != nil {
				t.Fatal(err)
			}
			var sum model.EvalStats
			in := spec.InputSize()
			for i := 0; i < b.N; i++ {
				one, err := tr.Evaluate(p, model.Batch{X: b.X[i*in : (i+1)*in], Y: b.Y[i : i+1], N: 1})
				if err != nil {
					t.Fatal(err)
				}
				sum.Add(one)
			}
			if whole != sum {
				t.Errorf("whole batch %+v, sample by sample %+v", whole, sum)
			}
		})
	}
}

// separable makes n images of 1×28×28 noise in [0,0.3) with a bright 9×9
// square in the quadrant of its class (4 classes).
func separable(n int, seed uint64) model.Batch {
	rng := rand.New(rand.NewPCG(seed, 7))
	b := model.Batch{X: make([]float32, n*28*28), Y: make([]int32, n), N: n}
	for s := 0; s < n; s++ {
		c := rng.IntN(4)
		b.Y[s] = int32(c)
		img := b.X[s*784 : (s+1)*784]
		for i := range img {
			img[i] = 0.3 * rng.Float32()
		}
		oy, ox := 2+14*(c/2)+rng.IntN(3), 2+14*(c%2)+rng.IntN(3)
		for y := oy; y < oy+9; y++ {
			for x := ox; x < ox+9; x++ {
				img[y*28+x] = 0.8 + 0.2*rng.Float32()
			}
		}
	}
	return b
}

// TestLearnsSeparableProblem trains each sequential architecture on a
// problem it can solve and expects the loss to collapse and
// held-out accuracy to be high. The deeper networks need more steps than a
// unit test should take; the golden fixtures check their training exactly.
func TestLearnsSeparableProblem(t *testing.T) {
	for _, name := range []string{model.LeNet5, model.Logistic, model.LR, model.MLP, model.SVM} {
		t.Run(name, func(t *testing.T) {
			spec := model.Spec{Name: name, Channels: 1, Height: 28, Width: 28, Classes: 4}
			tr, err := New(spec)
			if err != nil {
				t.Fatal(err)
			}
			p, err := model.Init(spec, 3)
			if err != nil {
				t.Fatal(err)
			}
			test := separable(200, 99)
			before, err := tr.Evaluate(p, test)
			if err != nil {
				t.Fatal(err)
			}
			batches := make([]model.Batch, 40)
			for i := range batches {
				batches[i] = separable(20, uint64(i))
			}
			st, err := tr.Train(p, batches, model.SGD{LR: 0.05, Momentum: 0.9, WeightDecay: 5e-4, LossDecay: 0.2})
			if err != nil {
				t.Fatal(err)
			}
			after, err := tr.Evaluate(p, test)
			if err != nil {
				t.Fatal(err)
			}
			lossBefore, lossAfter := before.LossSum/float64(before.Count), after.LossSum/float64(after.Count)
			acc := float64(after.Top1) / float64(after.Count)
			t.Logf("test loss %.3f → %.3f, accuracy %.3f, moving train loss %.3f", lossBefore, lossAfter, acc, st.MovingLoss)
			if lossAfter > 0.25*lossBefore || st.MovingLoss > 0.5*st.MeanLoss {
				t.Errorf("loss did not fall enough: test %.3f → %.3f, train mean %.3f moving %.3f", lossBefore, lossAfter, st.MeanLoss, st.MovingLoss)
			}
			if acc < 0.95 {
				t.Errorf("held-out accuracy %.3f, want ≥ 0.95", acc)
			}
		})
	}
}

// TestNoAllocationInSteadyState checks that a warmed-up trainer reuses its
// scratch memory.
func TestNoAllocationInSteadyState(t *testing.T) {
	for _, spec := range detSpecs {
		t.Run(spec.Name, func(t *testing.T) {
			tr, err := New(spec)
			if err != nil {
				t.Fatal(err)
			}
			global, err := model.Init(spec, 1)
			if err != nil {
				t.Fatal(err)
			}
			p := global.Clone()
			batches := synthBatches(spec, 2, 20, 1)
			test := synthBatches(spec, 1, 100, 2)[0]
			opt := model.SGD{LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4, ProxMu: 0.01, Anchor: global}
			train := func() {
				if _, err := tr.Train(p, batches, opt); err != nil {
					t.Fatal(err)
				}
			}
			eval := func() {
				if _, err := tr.Evaluate(p, test); err != nil {
					t.Fatal(err)
				}
			}
			train()
			eval()
			// One allocation is TrainStats.Losses, returned to the caller.
			if n := testing.AllocsPerRun(3, train); n > 1 {
				t.Errorf("Train: %v allocations per call", n)
			}
			if n := testing.AllocsPerRun(3, eval); n != 0 {
				t.Errorf("Evaluate: %v allocations per call", n)
			}
		})
	}
}
