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
	"sync"

	"github.com/fedscale/fedscale-go/runtime/model"
	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// evalChunk bounds the samples Evaluate forwards at once, so a large test
// batch does not need activations for all of it. Results do not depend on
// it: each sample's forward pass is independent of the others.
const evalChunk = 64

// netTrainer implements model.Trainer for model.Arch networks. Its scratch
// memory grows to the largest batch seen and is reused, so steady-state
// steps do not allocate.
type netTrainer struct {
	mu      sync.Mutex // the contract is one goroutine at a time; this makes misuse slow, not wrong
	spec    model.Spec
	arch    *model.Arch
	tmpl    tensor.List
	root    module
	bnHW    int // smallest spatial size any batch norm sees; 0 without batch norm
	c       runCtx
	capN    int
	xin     []float32 // the batch in channel-major layout
	logits  []float32 // [n][classes]
	dlogits []float32
	dlogT   []float32   // [classes][n]
	mom     [][]float32 // momentum buffers; nil for buffers
	ex      []float64
	// The step being applied by update.
	opt   model.SGD
	first bool
	last  bool // check the updated weights are finite
	bad   int  // the first parameter found non-finite on the last step, or -1
}

// update applies one SGD step to parameter i with gradient g.
func (t *netTrainer) update(i int, g []float32) {
	var anchor []float32
	if t.opt.ProxMu > 0 {
		anchor = t.opt.Anchor[i].Data
	}
	sgdStep(t.c.p[i].Data, g, t.mom[i], anchor, t.opt, t.first)
	// The last update is not followed by a loss that would reveal an
	// overflow, so its weights are checked here, while still in cache.
	if t.last && t.bad < 0 && !finite(t.c.p[i].Data) {
		t.bad = i
	}
}

// finite reports whether every value of x is finite: v*0 is 0 for a
// finite v and NaN for NaN and ±Inf, so one sum tells.
func finite(x []float32) bool {
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += x[i] * 0
		s1 += x[i+1] * 0
		s2 += x[i+2] * 0
		s3 += x[i+3] * 0
	}
	for ; i < len(x); i++ {
		s0 += x[i] * 0
	}
	return s0+s1+s2+s3 == 0
}

// New returns a CPU Trainer for spec. Every model, the sequential
// lenet5/mlp/logistic family as well as the torchvision architectures,
// runs on the graph of modules (net.go) compiled from model.Build's layer
// tree.
func New(spec model.Spec) (model.Trainer, error) {
	a, err := model.Build(spec)
	if err != nil {
		return nil, fmt.Errorf("cpu backend: %w", err)
	}
	tmpl := a.Layout()
	root, err := compile(a.Root)
	if err != nil {
		return nil, fmt.Errorf("cpu backend: %s: %w", spec, err)
	}
	t := &netTrainer{spec: spec, arch: a, tmpl: tmpl, root: root}
	t.bnHW = model.BatchNormPlane(a.Root)
	t.mom = make([][]float32, len(tmpl))
	for i, p := range tmpl {
		if !model.IsBuffer(p.Name) {
			t.mom[i] = make([]float32, tensor.Size(p.Shape))
		}
	}
	t.c.apply = t.update
	t.ex = make([]float64, spec.Classes)
	return t, nil
}

func (t *netTrainer) Spec() model.Spec { return t.spec }

func (t *netTrainer) reserve(n int) {
	if n <= t.capN {
		return
	}
	t.root.reserve(n)
	t.xin = make([]float32, n*t.arch.In.Size())
	k := t.spec.Classes
	t.logits = make([]float32, n*k)
	t.dlogits = make([]float32, n*k)
	t.dlogT = make([]float32, n*k)
	t.capN = n
}

// forward runs the network on n samples (NCHW) and returns logits [n][classes].
func (t *netTrainer) forward(p tensor.List, x []float32, n int, train bool) []float32 {
	in := t.arch.In
	hw := in.H * in.W
	xin := t.xin[:n*in.Size()]
	for s := 0; s < n; s++ {
		for ch := 0; ch < in.C; ch++ {
			copy(xin[(ch*n+s)*hw:(ch*n+s+1)*hw], x[(s*in.C+ch)*hw:])
		}
	}
	t.c.p, t.c.train, t.c.n = p, train, n
	out := t.root.forward(&t.c, xin) // [classes][n]
	k := t.spec.Classes
	logits := t.logits[:n*k]
	for j := 0; j < k; j++ {
		for s := 0; s < n; s++ {
			logits[s*k+j] = out[j*n+s]
		}
	}
	return logits
}

func (t *netTrainer) Train(params tensor.List, batches []model.Batch, opt model.SGD) (model.TrainStats, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var st model.TrainStats
	maxN, err := t.checkTrain(params, batches, opt)
	if err != nil {
		return st, err
	}
	for i, b := range batches {
		if err := model.CheckBatchNorm(t.bnHW, b.N); err != nil {
			return st, fmt.Errorf("cpu %s: train: batch %d: %w", t.spec, i, err)
		}
	}
	t.reserve(maxN)
	st.Losses = make([]float64, 0, len(batches))
	t.c.seed = opt.Seed
	for step, b := range batches {
		t.c.step = step
		t.opt, t.first, t.last, t.bad = opt, step == 0, step == len(batches)-1, -1
		loss := t.backprop(params, b)
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return st, fmt.Errorf("cpu %s: train: step %d: loss is %v (training diverged; lower the learning rate)", t.spec, step, loss)
		}
		st.Record(loss, b.N, opt.LossDecay)
	}
	t.opt = model.SGD{} // drop the anchor
	for i := range params {
		// Buffers (batch norm's running statistics) are small; the
		// parameters were checked as they were updated.
		if t.bad < 0 && t.mom[i] == nil && !finite(params[i].Data) {
			t.bad = i
		}
	}
	if t.bad >= 0 {
		return st, fmt.Errorf("cpu %s: train: after step %d: tensor %q holds a non-finite value (training diverged; lower the learning rate)", t.spec, st.Steps-1, params[t.bad].Name)
	}
	return st, nil
}

// backprop runs one training step's forward and backward passes on b,
// handing each parameter's gradient to t.c.apply, and returns the summed
// per-sample loss. A loss that is not finite is returned before the
// backward pass, so no parameter changes.
func (t *netTrainer) backprop(p tensor.List, b model.Batch) float64 {
	k := t.spec.Classes
	logits := t.forward(p, b.X, b.N, true)
	loss := xentGrad(logits, b.Y, k, t.dlogits[:b.N*k], t.ex)
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return loss
	}
	dl := t.dlogT[:b.N*k]
	for s := 0; s < b.N; s++ {
		for j := 0; j < k; j++ {
			dl[j*b.N+s] = t.dlogits[s*k+j]
		}
	}
	t.root.backward(&t.c, dl, false)
	return loss
}

func (t *netTrainer) Evaluate(params tensor.List, b model.Batch) (model.EvalStats, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var st model.EvalStats
	if err := t.checkParams(params); err != nil {
		return st, err
	}
	if err := b.Validate(t.spec); err != nil {
		return st, fmt.Errorf("cpu %s: evaluate: %w", t.spec, err)
	}
	// Forward b in chunks: a large test batch needs no activations for
	// all of it, and results do not depend on the chunks, since every
	// sample's logits are its own (in evaluation mode: running
	// statistics, no dropout).
	chunk := max(t.capN, evalChunk)
	t.reserve(min(chunk, b.N))
	in, k := t.spec.InputSize(), min(5, t.spec.Classes)
	for off := 0; off < b.N; off += chunk {
		n := min(chunk, b.N-off)
		logits := t.forward(params, b.X[off*in:(off+n)*in], n, false)
		score(&st, logits, b.Y[off:off+n], t.spec.Classes, k)
	}
	return st, nil
}

// checkTrain validates a Train call before any step, so a bad task leaves
// params untouched, and returns the largest batch.
func (t *netTrainer) checkTrain(params tensor.List, batches []model.Batch, opt model.SGD) (int, error) {
	spec := t.spec
	if err := t.checkParams(params); err != nil {
		return 0, err
	}
	if err := opt.Validate(params); err != nil {
		return 0, fmt.Errorf("cpu %s: %w", spec, err)
	}
	if len(batches) == 0 {
		return 0, fmt.Errorf("cpu %s: train: no batches", spec)
	}
	maxN := 0
	for i, b := range batches {
		if err := b.Validate(spec); err != nil {
			return 0, fmt.Errorf("cpu %s: train: batch %d: %w", spec, i, err)
		}
		if b.N == 0 {
			return 0, fmt.Errorf("cpu %s: train: batch %d is empty", spec, i)
		}
		maxN = max(maxN, b.N)
	}
	return maxN, nil
}

// checkParams reports whether params have the names and shapes of the
// model's parameters.
func (t *netTrainer) checkParams(params tensor.List) error {
	if err := t.tmpl.CheckCompatible(params); err != nil {
		return fmt.Errorf("cpu %s: params do not match the model: %w", t.spec, err)
	}
	return nil
}

var _ model.Trainer = (*netTrainer)(nil)

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
