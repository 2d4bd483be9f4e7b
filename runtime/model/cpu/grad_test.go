package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/fedscale/fedscale-go/runtime/model"
	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// closeEnough is the tolerance of float32 analytic values against float64
// references.
func closeEnough(got, want, atol, rtol float64) bool {
	return math.Abs(got-want) <= atol+rtol*math.Abs(want)
}

func randVec(rng *rand.Rand, n int, lo, hi float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(lo + (hi-lo)*rng.Float64())
	}
	return out
}

// TestLayerGradients checks each layer type alone, including paths the
// networks never take (input gradients of a padded convolution, pooling
// of odd sizes), against central differences of the float64 reference
// for the objective L = Σ r·y with fixed random r.
func TestLayerGradients(t *testing.T) {
	tests := []struct {
		name    string
		l       layer
		inLen   int
		nParams int
	}{
		{"dense", &dense{in: 7, out: 5, w: 0}, 7, 2},
		{"dense relu", &dense{in: 9, out: 6, relu: true, w: 0}, 9, 2},
		{"conv pad2 relu", newConv(2, 7, 6, 3, 5, 2, true, 0), 2 * 7 * 6, 2},
		{"conv pad0", newConv(3, 8, 9, 4, 5, 0, false, 0), 3 * 8 * 9, 2},
		{"conv pad1 k3", newConv(2, 5, 5, 2, 3, 1, true, 0), 2 * 5 * 5, 2},
		{"maxpool odd", newMaxPool(2, 7, 5), 2 * 7 * 5, 0},
	}
	const n = 3
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			var p paramList
			for _, sh := range tc.l.shapes() {
				size := 1
				for _, d := range sh {
					size *= d
				}
				p = append(p, randVec(rng, size, -0.5, 0.5))
			}
			x := randVec(rng, n*tc.inLen, -1, 1)
			r := randVec(rng, n*tc.l.outSize(), -1, 1)

			y := make([]float32, n*tc.l.outSize())
			var s scratch
			tc.l.forward(p.list(), x, y, n, &s)
			want := refLayer(tc.l, params64(p.list()), to64(x), n)
			for i := range y {
				if !closeEnough(float64(y[i]), want[i], 1e-5, 1e-5) {
					t.Fatalf("forward[%d] = %v, reference %v", i, y[i], want[i])
				}
			}
			dy := append([]float32(nil), r...)
			dx := make([]float32, len(x))
			grads := make([][]float32, len(p))
			for i := range p {
				grads[i] = make([]float32, len(p[i]))
			}
			tc.l.backward(p.list(), grads, x, y, dy, dx, n, &s)

			obj := func(p64 [][]float64, x64 []float64) float64 {
				var sum float64
				for i, v := range refLayer(tc.l, p64, x64, n) {
					sum += float64(r[i]) * v
				}
				return sum
			}
			p64, x64 := params64(p.list()), to64(x)
			checkFD(t, "input", dx, x64, nil, 1e-4, func() float64 { return obj(p64, x64) })
			for i := range p64 {
				checkFD(t, fmt.Sprintf("param %d", i), grads[i], p64[i], nil, 1e-4, func() float64 { return obj(p64, x64) })
			}
		})
	}
}

// checkFD compares the analytic gradient g of f with central differences
// at the indices idx (all when nil), perturbing v, which f reads, in place.
func checkFD(t *testing.T, what string, g []float32, v []float64, idx []int, atol float64, f func() float64) {
	t.Helper()
	const eps = 1e-6
	if idx == nil {
		idx = make([]int, len(v))
		for i := range idx {
			idx[i] = i
		}
	}
	for _, i := range idx {
		orig := v[i]
		v[i] = orig + eps
		up := f()
		v[i] = orig - eps
		down := f()
		v[i] = orig
		num := (up - down) / (2 * eps)
		if !closeEnough(float64(g[i]), num, atol, 1e-4) {
			t.Errorf("%s grad[%d] = %v, finite difference %v", what, i, g[i], num)
		}
	}
}

// TestModelGradients checks every architecture end to end: the gradient
// of the batch-mean cross-entropy that backward leaves in t.grads against
// central differences of the float64 reference network.
func TestModelGradients(t *testing.T) {
	specs := []model.Spec{
		{Name: model.Logistic, Channels: 2, Height: 3, Width: 4, Classes: 5},
		{Name: model.MLP, Channels: 1, Height: 4, Width: 5, Classes: 3},
		{Name: model.LeNet5, Channels: 1, Height: 12, Width: 12, Classes: 4},
		{Name: model.LeNet5, Channels: 2, Height: 15, Width: 13, Classes: 3},
	}
	for _, spec := range specs {
		t.Run(spec.String(), func(t *testing.T) {
			tr, err := New(spec)
			if err != nil {
				t.Fatal(err)
			}
			tt := tr.(*trainer)
			params, err := model.Init(spec, 7)
			if err != nil {
				t.Fatal(err)
			}
			b := synthBatches(spec, 1, 3, 5)[0]
			tt.reserve(b.N)
			logits := tt.forward(params, b.X, b.N)
			loss := xentGrad(logits, b.Y, spec.Classes, tt.dacts[len(tt.layers)][:b.N*spec.Classes], tt.ex)
			tt.backward(params, b.X, b.N)

			p64, x64 := params64(params), to64(b.X)
			f := func() float64 { return refLoss(tt.layers, p64, x64, b.Y, spec.Classes) }
			if want := f(); !closeEnough(loss/float64(b.N), want, 1e-5, 1e-5) {
				t.Fatalf("loss %v, reference %v", loss/float64(b.N), want)
			}
			rng := rand.New(rand.NewPCG(3, 4))
			for i := range p64 {
				// A sample of each large tensor keeps the float64
				// reference affordable; small ones are checked whole.
				idx := rng.Perm(len(p64[i]))
				if len(idx) > 60 {
					idx = idx[:60]
				}
				checkFD(t, params[i].Name, tt.grads[i], p64[i], idx, 1e-5, f)
			}
		})
	}
}

// paramList holds bare parameter values for layer tests; layers find
// their parameters by position, so names do not matter.
type paramList [][]float32

func (p paramList) list() tensor.List {
	out := make(tensor.List, len(p))
	for i, d := range p {
		out[i] = tensor.Tensor{Shape: []int{len(d)}, Data: d}
	}
	return out
}
