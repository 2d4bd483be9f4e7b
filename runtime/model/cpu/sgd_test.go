package cpu

import (
	"math"
	"testing"

	"github.com/fedscale/fedscale-go/runtime/model"
	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// tinySpec is a logistic model small enough to work its steps by hand:
// two inputs, two classes, one sample x = (1, 0.5) with label 0.
var tinySpec = model.Spec{Name: model.Logistic, Channels: 1, Height: 1, Width: 2, Classes: 2}

func tinyParams() tensor.List {
	return tensor.List{
		{Name: "fc.weight", Shape: []int{2, 2}, Data: []float32{0.1, -0.2, 0.3, 0.4}},
		{Name: "fc.bias", Shape: []int{2}, Data: []float32{0.05, -0.05}},
	}
}

func tinyAnchor() tensor.List {
	return tensor.List{
		{Name: "fc.weight", Shape: []int{2, 2}, Data: []float32{0.5, 0.5, -0.5, 0}},
		{Name: "fc.bias", Shape: []int{2}, Data: []float32{0, 1}},
	}
}

var tinyBatch = model.Batch{X: []float32{1, 0.5}, Y: []int32{0}, N: 1}

// TestSGDHandComputed checks single steps (and a two-step momentum run)
// against values worked out by hand in float64. Logits before the first
// step are (0.05, 0.45), so softmax gives p0 = 0.401312 and the logit
// gradient is (-0.598688, 0.598688); the weight gradient is that times x.
func TestSGDHandComputed(t *testing.T) {
	tests := []struct {
		name    string
		opt     model.SGD
		steps   int
		w, b    []float64
		moving  float64
		meanLos float64
	}{
		{"plain", model.SGD{LR: 0.1}, 1,
			[]float64{0.159868766, -0.170065617, 0.240131234, 0.370065617}, []float64{0.109868766, -0.109868766}, 0.9130152524, 0.9130152524},
		// g += 0.5*w: every weight ends 0.05*w below the plain step.
		{"weight decay", model.SGD{LR: 0.1, WeightDecay: 0.5}, 1,
			[]float64{0.154868766, -0.160065617, 0.225131234, 0.350065617}, []float64{0.107368766, -0.107368766}, 0.9130152524, 0.9130152524},
		// g += 0.5*(w - anchor): w00 = 0.1 is below its anchor 0.5, so it
		// must end above the plain step's 0.159869 (pulled toward 0.5).
		{"prox", model.SGD{LR: 0.1, ProxMu: 0.5, Anchor: tinyAnchor()}, 1,
			[]float64{0.179868766, -0.135065617, 0.200131234, 0.350065617}, []float64{0.107368766, -0.057368766}, 0.9130152524, 0.9130152524},
		// Second step: buf = 0.9*g1 + g2.
		{"momentum", model.SGD{LR: 0.1, Momentum: 0.9, LossDecay: 0.2}, 2,
			[]float64{0.267010787, -0.116494606, 0.132989213, 0.316494606}, []float64{0.217010787, -0.217010787},
			0.8*0.9130152524 + 0.2*0.7605726806, (0.9130152524 + 0.7605726806) / 2},
		{"all terms", model.SGD{LR: 0.1, Momentum: 0.9, WeightDecay: 0.5, ProxMu: 0.5, Anchor: tinyAnchor(), LossDecay: 0.2}, 2,
			[]float64{0.301715051, 0.005857526, -0.013715051, 0.208142474}, []float64{0.195715051, -0.055715051},
			0.8*0.9130152524 + 0.2*0.7329545302, (0.9130152524 + 0.7329545302) / 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := New(tinySpec)
			if err != nil {
				t.Fatal(err)
			}
			p := tinyParams()
			batches := make([]model.Batch, tc.steps)
			for i := range batches {
				batches[i] = tinyBatch
			}
			st, err := tr.Train(p, batches, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range tc.w {
				if !closeEnough(float64(p[0].Data[i]), want, 1e-6, 0) {
					t.Errorf("weight[%d] = %.9f, want %.9f", i, p[0].Data[i], want)
				}
			}
			for i, want := range tc.b {
				if !closeEnough(float64(p[1].Data[i]), want, 1e-6, 0) {
					t.Errorf("bias[%d] = %.9f, want %.9f", i, p[1].Data[i], want)
				}
			}
			if !closeEnough(st.MovingLoss, tc.moving, 1e-6, 0) || !closeEnough(st.MeanLoss, tc.meanLos, 1e-6, 0) {
				t.Errorf("losses moving %.9f mean %.9f, want %.9f %.9f", st.MovingLoss, st.MeanLoss, tc.moving, tc.meanLos)
			}
			if st.Steps != tc.steps || st.Samples != tc.steps {
				t.Errorf("steps %d samples %d, want %d %d", st.Steps, st.Samples, tc.steps, tc.steps)
			}
		})
	}
}

// TestProxPullsTowardAnchor checks the FedProx sign on its own: the only
// difference the term makes to one step is -LR*ProxMu*(w - anchor), which
// shrinks the distance to the anchor.
func TestProxPullsTowardAnchor(t *testing.T) {
	tr, err := New(tinySpec)
	if err != nil {
		t.Fatal(err)
	}
	plain, prox := tinyParams(), tinyParams()
	if _, err := tr.Train(plain, []model.Batch{tinyBatch}, model.SGD{LR: 0.1}); err != nil {
		t.Fatal(err)
	}
	anchor := tinyAnchor()
	if _, err := tr.Train(prox, []model.Batch{tinyBatch}, model.SGD{LR: 0.1, ProxMu: 1, Anchor: anchor}); err != nil {
		t.Fatal(err)
	}
	start := tinyParams()
	for ti := range start {
		for i, w := range start[ti].Data {
			a := anchor[ti].Data[i]
			want := -0.1 * 1 * float64(w-a)
			got := float64(prox[ti].Data[i] - plain[ti].Data[i])
			if !closeEnough(got, want, 1e-6, 0) {
				t.Errorf("%s[%d]: prox moved %v relative to plain SGD, want %v", start[ti].Name, i, got, want)
			}
			if math.Abs(float64(prox[ti].Data[i]-a)) >= math.Abs(float64(plain[ti].Data[i]-a)) {
				t.Errorf("%s[%d]: prox step ended no closer to the anchor", start[ti].Name, i)
			}
		}
	}
}

// TestMomentumResetsPerCall checks that one Train call is one task: a
// second call starts with an empty momentum buffer.
func TestMomentumResetsPerCall(t *testing.T) {
	tr, err := New(tinySpec)
	if err != nil {
		t.Fatal(err)
	}
	opt := model.SGD{LR: 0.1, Momentum: 0.9}
	warm := tinyParams()
	if _, err := tr.Train(warm, []model.Batch{tinyBatch, tinyBatch}, opt); err != nil {
		t.Fatal(err)
	}
	a, b := tinyParams(), tinyParams()
	if _, err := tr.Train(a, []model.Batch{tinyBatch}, opt); err != nil {
		t.Fatal(err)
	}
	fresh, err := New(tinySpec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.Train(b, []model.Batch{tinyBatch}, opt); err != nil {
		t.Fatal(err)
	}
	for ti := range a {
		for i := range a[ti].Data {
			if a[ti].Data[i] != b[ti].Data[i] {
				t.Fatalf("%s[%d]: %v after an earlier task, %v on a fresh trainer", a[ti].Name, i, a[ti].Data[i], b[ti].Data[i])
			}
		}
	}
}
