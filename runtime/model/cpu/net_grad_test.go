package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/fedscale/fedscale-go/runtime/model"
	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// modCase is one module of the graph engine with the parameters it reads.
type modCase struct {
	name   string
	layer  *model.Layer
	params [][]int // shapes, at layer.Param = 0 onwards
}

func convLayer(name string, in model.Shape, outC, k, stride, pad, groups int) *model.Layer {
	oh, ow := (in.H+2*pad-k)/stride+1, (in.W+2*pad-k)/stride+1
	return &model.Layer{Kind: model.Conv, Name: name, In: in, Out: model.Shape{C: outC, H: oh, W: ow}, K: k, Stride: stride, Pad: pad, Groups: groups}
}

func bnLayer(in model.Shape, act model.Act, param int) *model.Layer {
	return &model.Layer{Kind: model.BatchNorm, In: in, Out: in, Act: act, Param: param}
}

func bnShapes(c int) [][]int { return [][]int{{c}, {c}, {c}, {c}, {}} }

// TestModuleGradients checks every module of the graph engine against
// central differences of its own float32 forward pass, for L = Σ r·y with
// fixed random r, in training mode (batch statistics).
func TestModuleGradients(t *testing.T) {
	s6 := model.Shape{C: 4, H: 6, W: 5}
	s7 := model.Shape{C: 3, H: 7, W: 7}
	// A residual block with a strided, downsampling shortcut.
	c1 := convLayer("c1", s7, 4, 3, 2, 1, 1)
	n1 := bnLayer(c1.Out, model.ActReLU, 1)
	c2 := convLayer("c2", c1.Out, 4, 3, 1, 1, 1)
	c2.Param = 6
	n2 := bnLayer(c2.Out, model.ActNone, 7)
	d := convLayer("d", s7, 4, 1, 2, 0, 1)
	d.Param = 12
	dn := bnLayer(d.Out, model.ActNone, 13)
	res := &model.Layer{Kind: model.Residual, In: s7, Out: c2.Out, Act: model.ActReLU, Children: []*model.Layer{
		{Kind: model.Seq, In: s7, Out: c2.Out, Children: []*model.Layer{c1, n1, c2, n2}},
		{Kind: model.Seq, In: s7, Out: d.Out, Children: []*model.Layer{d, dn}},
	}}
	resShapes := append(append(append(append(append([][]int{{4, 3, 3, 3}}, bnShapes(4)...), []int{4, 4, 3, 3}), bnShapes(4)...), []int{4, 3, 1, 1}), bnShapes(4)...)
	// ShuffleNet units: stride 1 (split) and stride 2 (two branches).
	b2 := convLayer("b2", model.Shape{C: 2, H: 6, W: 5}, 2, 1, 1, 0, 1)
	b2n := bnLayer(b2.Out, model.ActReLU, 1)
	b2d := convLayer("b2d", b2.Out, 2, 3, 1, 1, 2)
	b2d.Param = 6
	sh1 := &model.Layer{Kind: model.Shuffle, In: s6, Out: s6, Children: []*model.Layer{
		{Kind: model.Seq, In: b2.In, Out: b2d.Out, Children: []*model.Layer{b2, b2n, b2d}},
	}}
	sh1Shapes := append(append([][]int{{2, 2, 1, 1}}, bnShapes(2)...), []int{2, 1, 3, 3})
	br1 := convLayer("br1", s6, 4, 3, 2, 1, 4)
	br2 := convLayer("br2", s6, 2, 1, 2, 0, 1)
	br2.Param = 1
	br1p := convLayer("br1p", br1.Out, 2, 1, 1, 0, 1)
	br1p.Param = 2
	sh2 := &model.Layer{Kind: model.Shuffle, In: s6, Out: model.Shape{C: 4, H: 3, W: 3}, Children: []*model.Layer{
		{Kind: model.Seq, In: s6, Out: br1p.Out, Children: []*model.Layer{br1, br1p}},
		{Kind: model.Seq, In: s6, Out: br2.Out, Children: []*model.Layer{br2}},
	}}
	sh2.Children[0].Children[1].Param = 2
	sh2Shapes := [][]int{{4, 1, 3, 3}, {2, 4, 1, 1}, {2, 4, 1, 1}}
	tests := []modCase{
		{"conv k3 s2 p1", convLayer("c", s7, 5, 3, 2, 1, 1), [][]int{{5, 3, 3, 3}}},
		{"conv k3 s1 p1", convLayer("c", s6, 3, 3, 1, 1, 1), [][]int{{3, 4, 3, 3}}},
		{"conv k5 s1 p2", convLayer("c", s7, 2, 5, 1, 2, 1), [][]int{{2, 3, 5, 5}}},
		{"conv k7 s2 p3", convLayer("c", s7, 2, 7, 2, 3, 1), [][]int{{2, 3, 7, 7}}},
		{"conv 1x1", convLayer("c", s6, 3, 1, 1, 0, 1), [][]int{{3, 4, 1, 1}}},
		{"conv 1x1 s2", convLayer("c", s7, 3, 1, 2, 0, 1), [][]int{{3, 3, 1, 1}}},
		{"depthwise s1", convLayer("c", s6, 4, 3, 1, 1, 4), [][]int{{4, 1, 3, 3}}},
		{"depthwise s2", convLayer("c", s7, 3, 3, 2, 1, 3), [][]int{{3, 1, 3, 3}}},
		{"bn", bnLayer(s6, model.ActNone, 0), bnShapes(4)},
		{"bn relu", bnLayer(s6, model.ActReLU, 0), bnShapes(4)},
		{"bn relu6", bnLayer(s6, model.ActReLU6, 0), bnShapes(4)},
		{"maxpool k3 s2 p1", &model.Layer{Kind: model.MaxPool, In: s7, Out: model.Shape{C: 3, H: 4, W: 4}, K: 3, Stride: 2, Pad: 1}, nil},
		{"global avg pool", &model.Layer{Kind: model.GlobalAvgPool, In: s6, Out: model.Shape{C: 4, H: 1, W: 1}}, nil},
		{"linear", &model.Layer{Kind: model.Linear, In: model.Shape{C: 6, H: 1, W: 1}, Out: model.Shape{C: 5, H: 1, W: 1}}, [][]int{{5, 6}, {5}}},
		{"dropout", &model.Layer{Kind: model.Dropout, In: model.Shape{C: 6, H: 1, W: 1}, Out: model.Shape{C: 6, H: 1, W: 1}, P: 0.3}, nil},
		{"residual downsample", res, resShapes},
		{"seq conv bn relu conv bn", res.Children[0], resShapes[:12]},
		{"seq conv bn relu", &model.Layer{Kind: model.Seq, In: s7, Out: c1.Out, Children: []*model.Layer{c1, n1}}, resShapes[:6]},
		{"seq conv bn", &model.Layer{Kind: model.Seq, In: s7, Out: c1.Out, Children: []*model.Layer{c1, bnLayer(c1.Out, model.ActNone, 1)}}, resShapes[:6]},
		{"shuffle stride 1", sh1, sh1Shapes},
		{"shuffle stride 2", sh2, sh2Shapes},
	}
	const n = 3
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			m, c, g := moduleUnderTest(t, tc.layer, tc.params, rng, 0.6, n)
			p := c.p
			x := randVec(rng, n*tc.layer.In.Size(), -1, 1)
			r := randVec(rng, n*tc.layer.Out.Size(), -1, 1)
			obj := func() float64 {
				y := m.forward(c, x)
				var s float64
				for i, v := range y[:len(r)] {
					s += float64(v) * float64(r[i])
				}
				return s
			}
			obj()
			dx := append([]float32(nil), m.backward(c, r, true)...)
			const eps = 1e-4 // small: the ReLU kinks are near
			check := func(what string, v []float32, grad []float32) {
				t.Helper()
				for k := 0; k < min(len(v), 24); k++ {
					i := k * len(v) / min(len(v), 24)
					old := v[i]
					v[i] = old + eps
					up := obj()
					v[i] = old - eps
					down := obj()
					v[i] = old
					fd := (up - down) / (2 * eps)
					if !closeEnough(float64(grad[i]), fd, 2e-2, 2e-2) {
						t.Errorf("%s[%d]: analytic %.5f, finite difference %.5f", what, i, grad[i], fd)
					}
				}
			}
			check("dx", x, dx)
			for i := range p {
				if len(tc.params[i]) == 0 || isRunningStat(tc.layer, i) {
					continue
				}
				check(fmt.Sprintf("param %d", i), p[i].Data, g[i])
			}
		})
	}
}

// moduleUnderTest compiles l for batches of n, with parameters of the
// given shapes drawn uniform in ±scale from rng, in a training context
// whose apply copies each parameter's gradient into the returned slots.
func moduleUnderTest(t *testing.T, l *model.Layer, shapes [][]int, rng *rand.Rand, scale float64, n int) (module, *runCtx, [][]float32) {
	t.Helper()
	m, err := compile(l)
	if err != nil {
		t.Fatal(err)
	}
	p := make(tensor.List, len(shapes))
	g := make([][]float32, len(shapes))
	for i, sh := range shapes {
		p[i] = tensor.New("p", sh...)
		copy(p[i].Data, randVec(rng, len(p[i].Data), -scale, scale))
		g[i] = make([]float32, len(p[i].Data))
	}
	c := &runCtx{p: p, train: true, n: n, seed: 5, apply: func(i int, gi []float32) { copy(g[i], gi) }}
	m.reserve(n)
	return m, c, g
}

// isRunningStat reports whether parameter i is a batch norm buffer of the
// tree (they get no gradient).
func isRunningStat(l *model.Layer, i int) bool {
	if l.Kind == model.BatchNorm && (i == l.Param+2 || i == l.Param+3 || i == l.Param+4) {
		return true
	}
	for _, ch := range l.Children {
		if isRunningStat(ch, i) {
			return true
		}
	}
	return false
}

// TestGraphModelsForward runs every torchvision architecture on a small
// batch in training and evaluation and checks shapes and finiteness.
func TestGraphModelsForward(t *testing.T) {
	for _, name := range model.Supported() {
		if !model.IsTorchvision(name) {
			continue
		}
		t.Run(name, func(t *testing.T) {
			spec := model.Spec{Name: name, Channels: 3, Height: 32, Width: 32, Classes: 10}
			tr, err := New(spec)
			if err != nil {
				t.Fatal(err)
			}
			p, err := model.Init(spec, 1)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 1))
			b := model.Batch{X: randVec(rng, 4*spec.InputSize(), -1, 1), Y: []int32{1, 7, 3, 0}, N: 4}
			st, err := tr.Train(p, []model.Batch{b, b}, model.SGD{LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Losses) != 2 || math.Abs(st.Losses[0]-math.Log(10)) > 2 {
				t.Errorf("losses %v, want two near ln 10", st.Losses)
			}
			for _, pt := range p {
				if strings.HasSuffix(pt.Name, "num_batches_tracked") && pt.Data[0] != 2 {
					t.Errorf("%s = %v after 2 steps", pt.Name, pt.Data[0])
				}
			}
			ev, err := tr.Evaluate(p, b)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Count != 4 || math.IsNaN(ev.LossSum) {
				t.Errorf("eval %+v", ev)
			}
		})
	}
}

// TestGraphDeterminism checks that training is bit-identical across runs
// and trainers, and that an evaluated sample's logits do not depend on the
// batch it is evaluated in (evaluation chunks and test shards vary).
func TestGraphDeterminism(t *testing.T) {
	for _, name := range []string{model.ResNet18, model.MobileNetV2, model.ShuffleNetV2x0_5} {
		t.Run(name, func(t *testing.T) {
			spec := model.Spec{Name: name, Channels: 3, Height: 32, Width: 32, Classes: 10}
			global, err := model.Init(spec, 4)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(5, 6))
			b := model.Batch{X: randVec(rng, 5*spec.InputSize(), -1, 1), Y: []int32{1, 7, 3, 0, 9}, N: 5}
			run := func(tr model.Trainer) tensor.List {
				p := global.Clone()
				opt := model.SGD{LR: 0.02, Momentum: 0.9, WeightDecay: 5e-4, ProxMu: 0.01, Anchor: global, Seed: 3}
				if _, err := tr.Train(p, []model.Batch{b, b}, opt); err != nil {
					t.Fatal(err)
				}
				return p
			}
			tr1, _ := New(spec)
			tr2, _ := New(spec)
			a, b2, c := run(tr1), run(tr1), run(tr2)
			for i := range a {
				for j := range a[i].Data {
					if math.Float32bits(a[i].Data[j]) != math.Float32bits(b2[i].Data[j]) || math.Float32bits(a[i].Data[j]) != math.Float32bits(c[i].Data[j]) {
						t.Fatalf("%s[%d] differs between runs", a[i].Name, j)
					}
				}
			}
			nt := tr1.(*netTrainer)
			nt.reserve(5)
			all := append([]float32(nil), nt.forward(a, b.X, 5, false)...)
			in := spec.InputSize()
			for s := 0; s < 5; s++ {
				one := nt.forward(a, b.X[s*in:(s+1)*in], 1, false)
				for j, v := range one {
					if math.Float32bits(v) != math.Float32bits(all[s*spec.Classes+j]) {
						t.Fatalf("sample %d logit %d: %v alone, %v in the batch", s, j, v, all[s*spec.Classes+j])
					}
				}
			}
		})
	}
}

func TestFinite(t *testing.T) {
	for _, tc := range []struct {
		x    []float32
		want bool
	}{
		{nil, true},
		{[]float32{1, -2, 3e38, 1e-45, 0, 5}, true},
		{[]float32{1, 2, 3, 4, 5, float32(math.NaN())}, false},
		{[]float32{float32(math.Inf(1)), 2}, false},
		{[]float32{1, 2, 3, float32(math.Inf(-1))}, false},
	} {
		if got := finite(tc.x); got != tc.want {
			t.Errorf("finite(%v) = %v", tc.x, got)
		}
	}
}

// A step that overflows the weights is an error naming a tensor, even on
// the last step, where no later loss would show it.
func TestGraphDivergenceIsAnError(t *testing.T) {
	spec := model.Spec{Name: model.ShuffleNetV2x0_5, Channels: 3, Height: 32, Width: 32, Classes: 10}
	tr, _ := New(spec)
	p, _ := model.Init(spec, 1)
	rng := rand.New(rand.NewPCG(1, 1))
	b := model.Batch{X: randVec(rng, 4*spec.InputSize(), -1, 1), Y: []int32{1, 7, 3, 0}, N: 4}
	_, err := tr.Train(p, []model.Batch{b}, model.SGD{LR: 1e38, Momentum: 0.9})
	if err == nil || !strings.Contains(err.Error(), "after step 0: tensor") || !strings.Contains(err.Error(), "non-finite") {
		t.Fatalf("error %v, want non-finite weights after step 0", err)
	}
}

// TestIm2colSame checks the same-size fast path of im2col against the
// general one, value for value, on shapes down to 1x1.
func TestIm2colSame(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, tc := range []struct{ h, w, k, pad int }{{8, 8, 3, 1}, {5, 7, 3, 1}, {1, 1, 3, 1}, {2, 2, 3, 1}, {6, 4, 5, 2}, {4, 4, 1, 0}} {
		l := convLayer("c", model.Shape{C: 2, H: tc.h, W: tc.w}, 3, tc.k, 1, tc.pad, 1)
		const n = 3
		x := randVec(rng, n*l.In.Size(), -1, 1)
		kk, cols := 2*tc.k*tc.k, n*l.Out.H*l.Out.W
		fast := randVec(rng, kk*cols, -9, 9) // garbage: every value must be written
		im2colBatch(fast, x, l, n)
		slow := make([]float32, kk*cols)
		for ch := 0; ch < 2; ch++ {
			for i := 0; i < tc.k; i++ {
				for j := 0; j < tc.k; j++ {
					r := ((ch*tc.k+i)*tc.k + j) * cols
					for s := 0; s < n; s++ {
						for oy := 0; oy < l.Out.H; oy++ {
							for ox := 0; ox < l.Out.W; ox++ {
								iy, ix := oy+i-tc.pad, ox+j-tc.pad
								if iy >= 0 && iy < tc.h && ix >= 0 && ix < tc.w {
									slow[r+(s*l.Out.H+oy)*l.Out.W+ox] = x[((ch*n+s)*tc.h+iy)*tc.w+ix]
								}
							}
						}
					}
				}
			}
		}
		for q := range slow {
			if fast[q] != slow[q] {
				t.Fatalf("%+v: col[%d] = %v, want %v", tc, q, fast[q], slow[q])
			}
		}
	}
}
