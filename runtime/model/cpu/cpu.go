// Package cpu is the pure-Go CPU backend of model.Trainer: forward and
// backward passes of the supported architectures, softmax cross-entropy
// and SGD, in float32 on one goroutine per call.
//
// Each call is single-threaded on purpose: the runtime runs many client
// tasks in parallel, and a fixed summation order makes every result
// bit-for-bit reproducible whatever GOMAXPROCS is. Only arithmetic belongs
// here; specs, initialisation and validation rules live in package model.
package cpu

import (
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/fedscale/fedscale-go/runtime/model"
	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// evalChunk bounds the samples Evaluate forwards at once, so a large test
// batch does not need activations for all of it. Results do not depend on
// it: each sample's forward pass is independent of the others.
const evalChunk = 64

// trainer implements model.Trainer. Its scratch memory grows to the
// largest batch seen and is reused, so steady-state steps do not allocate.
type trainer struct {
	mu     sync.Mutex // the contract is one goroutine at a time; this makes misuse slow, not wrong
	spec   model.Spec
	tmpl   tensor.List
	layers []layer
	sizes  []int // values per sample entering layer i (i < len) and leaving the last

	capN  int         // samples the activation buffers hold
	acts  [][]float32 // acts[i+1] is layer i's output; the input is the batch itself
	dacts [][]float32 // gradients matching acts; dacts[0] is never needed
	grads [][]float32 // one per parameter
	mom   [][]float32 // momentum buffers, one per parameter
	ex    []float64   // per-class exp values of one sample
	s     scratch
}

// New returns a CPU Trainer for spec.
func New(spec model.Spec) (model.Trainer, error) {
	if model.IsTorchvision(spec.Name) {
		return newNet(spec)
	}
	tmpl, err := model.Layout(spec)
	if err != nil {
		return nil, fmt.Errorf("cpu backend: %w", err)
	}
	layers := build(spec)
	// The layer list must describe exactly the parameters package model
	// defines; a mismatch is a bug here, reported rather than crashed on.
	var shapes [][]int
	for _, l := range layers {
		shapes = append(shapes, l.shapes()...)
	}
	if len(shapes) != len(tmpl) {
		return nil, fmt.Errorf("cpu backend: %s: layers have %d parameters, model defines %d", spec, len(shapes), len(tmpl))
	}
	for i, sh := range shapes {
		if !slices.Equal(sh, tmpl[i].Shape) {
			return nil, fmt.Errorf("cpu backend: %s: parameter %q: layers want shape %v, model defines %v", spec, tmpl[i].Name, sh, tmpl[i].Shape)
		}
	}
	t := &trainer{spec: spec, tmpl: tmpl, layers: layers}
	t.sizes = append(t.sizes, spec.InputSize())
	for _, l := range layers {
		t.sizes = append(t.sizes, l.outSize())
	}
	t.acts = make([][]float32, len(t.sizes))
	t.dacts = make([][]float32, len(t.sizes))
	t.grads = make([][]float32, len(tmpl))
	t.mom = make([][]float32, len(tmpl))
	for i, p := range tmpl {
		t.grads[i] = make([]float32, tensor.Size(p.Shape))
		t.mom[i] = make([]float32, tensor.Size(p.Shape))
	}
	t.ex = make([]float64, spec.Classes)
	return t, nil
}

// build returns the layers of a validated spec.
func build(s model.Spec) []layer {
	in := s.InputSize()
	switch s.Name {
	case model.Logistic, model.LR, model.SVM:
		return []layer{&dense{in: in, out: s.Classes, w: 0}}
	case model.MLP:
		const hidden = 200
		return []layer{
			&dense{in: in, out: hidden, relu: true, w: 0},
			&dense{in: hidden, out: hidden, relu: true, w: 2},
			&dense{in: hidden, out: s.Classes, w: 4},
		}
	default: // model.LeNet5; model.Zeros rejected every other name
		c1 := newConv(s.Channels, s.Height, s.Width, 6, 5, 2, true, 0)
		p1 := newMaxPool(c1.oc, c1.oh, c1.ow)
		c2 := newConv(p1.c, p1.oh, p1.ow, 16, 5, 0, true, 2)
		p2 := newMaxPool(c2.oc, c2.oh, c2.ow)
		return []layer{c1, p1, c2, p2,
			&dense{in: p2.outSize(), out: 120, relu: true, w: 4},
			&dense{in: 120, out: 84, relu: true, w: 6},
			&dense{in: 84, out: s.Classes, w: 8},
		}
	}
}

func (t *trainer) Spec() model.Spec { return t.spec }

// reserve grows the activation buffers to hold n samples.
func (t *trainer) reserve(n int) {
	if n <= t.capN {
		return
	}
	for i := 1; i < len(t.sizes); i++ {
		t.acts[i] = make([]float32, n*t.sizes[i])
		t.dacts[i] = make([]float32, n*t.sizes[i])
	}
	t.capN = n
}

// forward runs the layers on n samples of x and returns the logits.
func (t *trainer) forward(p tensor.List, x []float32, n int) []float32 {
	in := x[:n*t.sizes[0]]
	for i, l := range t.layers {
		out := t.acts[i+1][:n*t.sizes[i+1]]
		l.forward(p, in, out, n, &t.s)
		in = out
	}
	return in
}

// backward propagates dacts[last] down, filling t.grads.
func (t *trainer) backward(p tensor.List, x []float32, n int) {
	for i := len(t.layers) - 1; i >= 0; i-- {
		in := x[:n*t.sizes[0]]
		var din []float32
		if i > 0 {
			in = t.acts[i][:n*t.sizes[i]]
			din = t.dacts[i][:n*t.sizes[i]]
		}
		t.layers[i].backward(p, t.grads, in, t.acts[i+1][:n*t.sizes[i+1]], t.dacts[i+1][:n*t.sizes[i+1]], din, n, &t.s)
	}
}

func (t *trainer) Train(params tensor.List, batches []model.Batch, opt model.SGD) (model.TrainStats, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var st model.TrainStats
	maxN, err := checkTrain(t.spec, t.tmpl, params, batches, opt)
	if err != nil {
		return st, err
	}
	t.reserve(maxN)
	st.Losses = make([]float64, 0, len(batches))

	classes := t.spec.Classes
	last := len(t.layers)
	for step, b := range batches {
		logits := t.forward(params, b.X, b.N)
		loss := xentGrad(logits, b.Y, classes, t.dacts[last][:b.N*classes], t.ex)
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return st, fmt.Errorf("cpu %s: train: step %d: loss is %v (training diverged; lower the learning rate)", t.spec, step, loss)
		}
		t.backward(params, b.X, b.N)
		for i := range params {
			var anchor []float32
			if opt.ProxMu > 0 {
				anchor = opt.Anchor[i].Data
			}
			sgdStep(params[i].Data, t.grads[i], t.mom[i], anchor, opt, step == 0)
		}
		st.Record(loss, b.N, opt.LossDecay)
	}
	// The last step's update is not followed by a loss that would reveal
	// an overflow, so check the weights themselves before they are sent.
	if err := params.CheckFinite(); err != nil {
		return st, fmt.Errorf("cpu %s: train: after step %d: %w (training diverged; lower the learning rate)", t.spec, st.Steps-1, err)
	}
	return st, nil
}

// sgdStep applies one torch.optim.SGD update to w. On the first step the
// momentum buffer is taken as zero, so it is overwritten without a read.
func sgdStep(w, g, buf, anchor []float32, o model.SGD, first bool) {
	g = g[:len(w)]
	buf = buf[:len(w)]
	lr, mom, wd, mu := o.LR, o.Momentum, o.WeightDecay, o.ProxMu
	if anchor != nil {
		anchor = anchor[:len(w)]
		for i, v := range w {
			d := g[i] + wd*v + mu*(v-anchor[i])
			if !first {
				d += mom * buf[i]
			}
			buf[i] = d
			w[i] = v - lr*d
		}
		return
	}
	for i, v := range w {
		d := g[i] + wd*v
		if !first {
			d += mom * buf[i]
		}
		buf[i] = d
		w[i] = v - lr*d
	}
}

func (t *trainer) Evaluate(params tensor.List, b model.Batch) (model.EvalStats, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return evaluate(t, t.spec, t.tmpl, t.capN, params, b)
}

func (t *trainer) inferLogits(p tensor.List, x []float32, n int) []float32 { return t.forward(p, x, n) }

var _ model.Trainer = (*trainer)(nil)
