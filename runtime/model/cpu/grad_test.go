package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/fedscale/fedscale-go/runtime/model"
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

// window returns the c-channel output shape of a convolution or pooling
// of window k, stride and pad on in.
func window(in model.Shape, c, k, stride, pad int) model.Shape {
	return model.Shape{C: c, H: (in.H+2*pad-k)/stride + 1, W: (in.W+2*pad-k)/stride + 1}
}

// seqLinear and seqConv are the sequential models' layers: a bias and,
// with relu, ReLU fused.
func seqLinear(in model.Shape, out int, relu bool) *model.Layer {
	l := &model.Layer{Kind: model.Linear, In: in, Out: model.Shape{C: out, H: 1, W: 1}}
	if relu {
		l.Act = model.ActReLU
	}
	return l
}

func seqConv(in model.Shape, oc, k, pad int, relu bool) *model.Layer {
	l := &model.Layer{Kind: model.Conv, In: in, Out: window(in, oc, k, 1, pad), K: k, Stride: 1, Pad: pad, Groups: 1, Bias: true}
	if relu {
		l.Act = model.ActReLU
	}
	return l
}

// paramShapes lists the parameter shapes of a Linear, Conv or MaxPool.
func paramShapes(l *model.Layer) [][]int {
	switch l.Kind {
	case model.Linear:
		return [][]int{{l.Out.C, l.In.Size()}, {l.Out.C}}
	case model.Conv:
		return [][]int{{l.Out.C, l.In.C, l.K, l.K}, {l.Out.C}}
	}
	return nil
}

// toCN converts n NCHW samples of shape s to the engine's channel-major
// layout, and fromCN back.
func toCN(x []float32, n int, s model.Shape) []float32   { return relayout(x, n, s, true) }
func fromCN(x []float32, n int, s model.Shape) []float32 { return relayout(x, n, s, false) }

func relayout(x []float32, n int, s model.Shape, toCN bool) []float32 {
	out := make([]float32, len(x))
	hw := s.H * s.W
	for i := 0; i < n; i++ {
		for c := 0; c < s.C; c++ {
			nchw, cn := (i*s.C+c)*hw, (c*n+i)*hw
			if toCN {
				copy(out[cn:cn+hw], x[nchw:])
			} else {
				copy(out[nchw:nchw+hw], x[cn:])
			}
		}
	}
	return out
}

// TestLayerGradients checks each layer of the sequential models alone,
// including paths the networks never take (input gradients of a padded
// convolution, pooling of odd sizes), against central differences of the
// float64 reference for the objective L = Σ r·y with fixed random r.
func TestLayerGradients(t *testing.T) {
	tests := []struct {
		name string
		l    *model.Layer
	}{
		{"dense", seqLinear(model.Shape{C: 7, H: 1, W: 1}, 5, false)},
		{"dense relu", seqLinear(model.Shape{C: 9, H: 1, W: 1}, 6, true)},
		{"dense flatten relu", seqLinear(model.Shape{C: 3, H: 2, W: 3}, 4, true)},
		{"conv pad2 relu", seqConv(model.Shape{C: 2, H: 7, W: 6}, 3, 5, 2, true)},
		{"conv pad0", seqConv(model.Shape{C: 3, H: 8, W: 9}, 4, 5, 0, false)},
		{"conv pad1 k3", seqConv(model.Shape{C: 2, H: 5, W: 5}, 2, 3, 1, true)},
		{"maxpool odd", &model.Layer{Kind: model.MaxPool, In: model.Shape{C: 2, H: 7, W: 5}, Out: window(model.Shape{C: 2, H: 7, W: 5}, 2, 2, 2, 0), K: 2, Stride: 2}},
	}
	const n = 3
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			m, c, grads := moduleUnderTest(t, tc.l, paramShapes(tc.l), rng, 0.5, n)
			x := randVec(rng, n*tc.l.In.Size(), -1, 1)
			r := randVec(rng, n*tc.l.Out.Size(), -1, 1)

			y := fromCN(m.forward(c, toCN(x, n, tc.l.In)), n, tc.l.Out)
			want := refLayer(tc.l, params64(c.p), to64(x), n)
			for i := range y {
				if !closeEnough(float64(y[i]), want[i], 1e-5, 1e-5) {
					t.Fatalf("forward[%d] = %v, reference %v", i, y[i], want[i])
				}
			}
			dx := fromCN(m.backward(c, toCN(r, n, tc.l.Out), true), n, tc.l.In)

			obj := func(p64 [][]float64, x64 []float64) float64 {
				var sum float64
				for i, v := range refLayer(tc.l, p64, x64, n) {
					sum += float64(r[i]) * v
				}
				return sum
			}
			p64, x64 := params64(c.p), to64(x)
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

// TestModelGradients checks every sequential architecture end to end:
// the gradient of the batch-mean cross-entropy that backprop hands each
// parameter against central differences of the float64 reference network.
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
			tt := tr.(*netTrainer)
			params, err := model.Init(spec, 7)
			if err != nil {
				t.Fatal(err)
			}
			b := synthBatches(spec, 1, 3, 5)[0]
			grads := make([][]float32, len(params))
			tt.c.apply = func(i int, g []float32) { grads[i] = append([]float32(nil), g...) }
			tt.reserve(b.N)
			loss := tt.backprop(params, b)

			p64, x64 := params64(params), to64(b.X)
			f := func() float64 { return refLoss(tt.arch.Root, p64, x64, b.Y, spec.Classes) }
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
				checkFD(t, params[i].Name, grads[i], p64[i], idx, 1e-5, f)
			}
		})
	}
}
