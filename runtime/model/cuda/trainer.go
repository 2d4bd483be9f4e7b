package cuda

import (
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/fedscale/fedscale-go/runtime/model"
	"github.com/fedscale/fedscale-go/runtime/model/cuda/cudalib"
	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// The trainer runs runtime/model/cpu's network (net.go, conv2d.go) with
// the same channel-major layout, module by module, each operation a
// kernel of kernels.cu or a cuBLAS product. Errors are sticky: the first
// failed call is kept in t.err and every later operation is skipped, so
// the module code reads like the CPU backend's and the step checks once.

// evalChunk bounds the samples Evaluate forwards at once, as on the CPU.
const evalChunk = 64

// Activation codes of kernels.cu.
func actCode(a model.Act) int32 {
	switch a {
	case model.ActReLU:
		return 1
	case model.ActReLU6:
		return 2
	}
	return 0
}

type trainer struct {
	d    dev
	spec model.Spec
	arch *model.Arch
	tmpl tensor.List
	root mod
	bnHW int
	err  error

	// Device memory: every buffer the trainer holds, for Close and the
	// memory report.
	held  map[uint64]uint64 // address -> bytes
	bytes uint64
	// grown are the address fields grow has filled (modules' buffers,
	// the im2col scratch), so reset can forget every address it frees.
	grown map[*uint64]*int64
	limit uint64 // bound on bytes; 0 for none (Backend.Limit)

	capN    int
	p, mom  []uint64 // per tensor; mom 0 for buffers
	anchor  []uint64
	gbuf    [2]uint64 // gradient scratch, the largest parameter each
	gcap    int
	col     uint64 // im2col scratch shared by every convolution
	colCap  int64
	xraw    uint64 // the batch as given, NCHW
	xin     uint64 // channel-major
	ydev    uint64 // labels, int32
	out     uint64 // logits [n][classes]
	dz      uint64 // their gradient [n][classes]
	dzT     uint64 // [classes][n]
	loss    uint64 // per-sample losses, double
	hits    uint64 // per-sample top-1/top-k, int32 pairs
	flags   uint64 // finite check
	anyFlag uint64
	train   bool
	n       int
	seed    uint64
	step    int
	opt     model.SGD
	first   bool
}

// newTrainer compiles spec's layer tree into modules on d.
func newTrainer(d dev, spec model.Spec) (*trainer, error) {
	a, err := model.Build(spec)
	if err != nil {
		return nil, fmt.Errorf("cuda backend: %w", err)
	}
	t := &trainer{d: d, spec: spec, arch: a, tmpl: a.Layout(), held: map[uint64]uint64{}, grown: map[*uint64]*int64{}}
	if t.root, err = compile(a.Root); err != nil {
		return nil, fmt.Errorf("cuda backend: %s: %w", spec, err)
	}
	t.bnHW = model.BatchNormPlane(a.Root)
	return t, nil
}

func (t *trainer) Spec() model.Spec { return t.spec }

// fail keeps the first error.
func (t *trainer) fail(err error) {
	if err != nil && t.err == nil {
		t.err = err
	}
}

// k launches a kernel unless an earlier call failed.
func (t *trainer) k(name string, n int64, args ...any) {
	if t.err == nil {
		t.fail(t.d.launch(name, n, args...))
	}
}

func (t *trainer) gemm(transA, transB bool, m, n, k int, a uint64, lda int, b uint64, ldb int, c uint64, ldc int, acc bool) {
	if t.err == nil {
		t.fail(t.d.gemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, acc))
	}
}

// grow makes *p hold at least words 4-byte values, reallocating only to
// grow; *capw tracks its size. An out-of-memory error names the model,
// the batch and what was free.
func (t *trainer) grow(p *uint64, capw *int64, words int64) {
	if t.err != nil || words <= *capw {
		return
	}
	t.grown[p] = capw
	if *p != 0 {
		t.release(*p)
		*p, *capw = 0, 0
	}
	bytes := uint64(max(words, 1)) * 4
	if t.limit > 0 && t.bytes+bytes > t.limit {
		t.fail(fmt.Errorf("cuda %s on %s: a batch of %d needs more device memory than the %d MiB this trainer may hold (--gpu-memory-mb; it holds %d MiB and asked for %d MiB more): lower batch_size or raise the bound",
			t.spec, t.d, t.n, t.limit>>20, t.bytes>>20, (bytes+1<<20-1)>>20))
		return
	}
	addr, err := t.d.alloc(bytes)
	if err != nil {
		var ce *cudalib.Error
		if errors.As(err, &ce) && ce.OutOfMemory() {
			free, total, _ := t.d.memInfo()
			err = fmt.Errorf("cuda %s on %s: out of device memory allocating %d MiB for a batch of %d (this trainer holds %d MiB; the device has %d of %d MiB free): lower batch_size or the executors per GPU: %w",
				t.spec, t.d, bytes>>20, t.n, t.bytes>>20, free>>20, total>>20, err)
		}
		t.fail(err)
		return
	}
	t.held[addr] = bytes
	t.bytes += bytes
	*p, *capw = addr, words
}

// alloc is grow for a buffer sized once.
func (t *trainer) alloc(words int64) uint64 {
	var p uint64
	var c int64
	t.grow(&p, &c, words)
	return p
}

func (t *trainer) release(p uint64) {
	t.bytes -= t.held[p]
	delete(t.held, p)
	t.d.free(p)
}

// Close frees the trainer's device memory.
func (t *trainer) Close() error {
	unbind, err := t.d.bind()
	if err != nil {
		return err
	}
	defer unbind()
	t.reset()
	return nil
}

// reset frees all the trainer's device memory and forgets every address,
// so the next call allocates afresh: after Close, and after an allocation
// failed half way through setup.
func (t *trainer) reset() {
	for p := range t.held {
		t.release(p)
	}
	for p, c := range t.grown {
		*p, *c = 0, 0
	}
	t.p, t.mom, t.anchor, t.capN = nil, nil, nil, 0
	t.gbuf, t.gcap, t.flags, t.anyFlag = [2]uint64{}, 0, 0, 0
	t.xraw, t.xin, t.ydev, t.out, t.dz, t.dzT, t.loss, t.hits = 0, 0, 0, 0, 0, 0, 0, 0
}

// Held is the device memory the trainer holds, in bytes.
func (t *trainer) Held() uint64 { return t.bytes }

// off is address p advanced by i float32 values.
func off(p uint64, i int) uint64 { return p + uint64(i)*4 }

// setup allocates the parameters, their momentum and the batch buffers for
// batches of up to n samples.
func (t *trainer) setup(n int) {
	if t.p == nil {
		t.p = make([]uint64, len(t.tmpl))
		t.mom = make([]uint64, len(t.tmpl))
		t.anchor = make([]uint64, len(t.tmpl))
		gmax := 0
		for i, p := range t.tmpl {
			sz := int64(tensor.Size(p.Shape))
			t.p[i] = t.alloc(sz)
			if !model.IsBuffer(p.Name) {
				t.mom[i] = t.alloc(sz)
				gmax = max(gmax, int(sz))
			}
		}
		t.gbuf[0], t.gbuf[1] = t.alloc(int64(gmax)), t.alloc(int64(gmax))
		t.gcap = gmax
		t.flags = t.alloc(4096)
		t.anyFlag = t.alloc(1)
		if t.err != nil {
			t.reset()
			return
		}
	}
	if n <= t.capN {
		return
	}
	in, k := int64(t.arch.In.Size()), int64(t.spec.Classes)
	N := int64(n)
	for _, b := range []struct {
		p     *uint64
		words int64
	}{{&t.xraw, N * in}, {&t.xin, N * in}, {&t.ydev, N}, {&t.out, N * k}, {&t.dz, N * k}, {&t.dzT, N * k}, {&t.loss, 2 * N}, {&t.hits, 2 * N}} {
		if *b.p != 0 {
			t.release(*b.p)
		}
		*b.p = t.alloc(b.words)
	}
	t.root.reserve(t, n)
	t.capN = n
	if t.err != nil {
		t.reset() // no buffer is left half-sized for the next call
	}
}

// copy copies n values within the device.
func (t *trainer) copy(dst, src uint64, n int) {
	if t.err == nil && n > 0 {
		t.fail(t.d.copy(dst, src, uint64(n)*4))
	}
}

// upload copies host values to the device.
func (t *trainer) upload(dst uint64, src []float32) {
	if t.err == nil && len(src) > 0 {
		t.fail(t.d.write(dst, unsafe.Pointer(&src[0]), uint64(len(src))*4))
	}
}

func (t *trainer) download(dst []float32, src uint64) {
	if t.err == nil && len(dst) > 0 {
		t.fail(t.d.read(unsafe.Pointer(&dst[0]), src, uint64(len(dst))*4))
	}
}

// forward runs the network on b's n samples and returns the logits'
// address, [n][classes].
func (t *trainer) forward(x []float32, y []int32, n int, train bool) uint64 {
	in := t.arch.In
	t.upload(t.xraw, x)
	if t.err == nil && n > 0 {
		t.fail(t.d.write(t.ydev, unsafe.Pointer(&y[0]), uint64(n)*4))
	}
	t.k("fs_to_channel_major", int64(n*in.Size()), t.xraw, t.xin, int32(n), int32(in.C), int32(in.H*in.W))
	t.train, t.n = train, n
	o := t.root.forward(t, t.xin) // [classes][n]
	t.k("fs_transpose", int64(n*t.spec.Classes), o, t.out, int32(t.spec.Classes), int32(n))
	return t.out
}

// losses reads back the per-sample losses and sums them in order, as the
// CPU backend does.
func (t *trainer) losses(n int) float64 {
	vals := make([]float64, n)
	if t.err == nil {
		t.fail(t.d.read(unsafe.Pointer(&vals[0]), t.loss, uint64(n)*8))
	}
	var total float64
	for _, v := range vals {
		total += v
	}
	return total
}

func (t *trainer) Train(params tensor.List, batches []model.Batch, opt model.SGD) (model.TrainStats, error) {
	var st model.TrainStats
	maxN, err := t.checkTrain(params, batches, opt)
	if err != nil {
		return st, err
	}
	for i, b := range batches {
		if err := model.CheckBatchNorm(t.bnHW, b.N); err != nil {
			return st, fmt.Errorf("cuda %s: train: batch %d: %w", t.spec, i, err)
		}
	}
	unbind, err := t.d.bind()
	if err != nil {
		return st, err
	}
	defer unbind()
	t.err, t.n = nil, maxN
	t.setup(maxN)
	if t.err != nil {
		return st, t.err
	}
	for i := range params {
		t.upload(t.p[i], params[i].Data)
		if opt.ProxMu > 0 && t.mom[i] != 0 {
			if t.anchor[i] == 0 {
				t.anchor[i] = t.alloc(int64(len(params[i].Data)))
			}
			t.upload(t.anchor[i], opt.Anchor[i].Data)
		}
	}
	if t.err != nil {
		return st, t.err
	}
	st.Losses = make([]float64, 0, len(batches))
	t.seed, t.opt = opt.Seed, opt
	k := t.spec.Classes
	for step, b := range batches {
		t.step, t.first = step, step == 0
		t.forward(b.X, b.Y, b.N, true)
		t.k("fs_xent", int64(b.N), t.out, t.ydev, t.dz, t.loss, int32(b.N), int32(k))
		loss := t.losses(b.N)
		if t.err != nil {
			return st, fmt.Errorf("cuda %s: train: step %d: %w", t.spec, step, t.err)
		}
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return st, fmt.Errorf("cuda %s: train: step %d: loss is %v (training diverged; lower the learning rate)", t.spec, step, loss)
		}
		t.k("fs_transpose", int64(b.N*k), t.dz, t.dzT, int32(b.N), int32(k))
		t.root.backward(t, t.dzT, false)
		if t.err != nil {
			return st, fmt.Errorf("cuda %s: train: step %d: %w", t.spec, step, t.err)
		}
		st.Record(loss, b.N, opt.LossDecay)
	}
	t.opt = model.SGD{}
	bad := -1
	for i := range params {
		if bad < 0 && !t.finite(t.p[i], len(params[i].Data)) {
			bad = i
		}
	}
	for i := range params {
		t.download(params[i].Data, t.p[i])
	}
	if t.err != nil {
		return st, fmt.Errorf("cuda %s: train: %w", t.spec, t.err)
	}
	if bad >= 0 {
		return st, fmt.Errorf("cuda %s: train: after step %d: tensor %q holds a non-finite value (training diverged; lower the learning rate)", t.spec, st.Steps-1, params[bad].Name)
	}
	return st, nil
}

// finite runs the two-pass finite check on n values at p.
func (t *trainer) finite(p uint64, n int) bool {
	const T = 4096
	t.k("fs_nonfinite", T, p, int64(n), t.flags, int32(T))
	t.k("fs_any", 1, t.flags, int32(T), t.anyFlag)
	var bad int32
	if t.err == nil {
		t.fail(t.d.read(unsafe.Pointer(&bad), t.anyFlag, 4))
	}
	return bad == 0
}

// apply runs the SGD step on parameter i with the gradient at g.
func (t *trainer) apply(i int, g uint64) {
	n := tensor.Size(t.tmpl[i].Shape)
	var anchor uint64
	if t.opt.ProxMu > 0 {
		anchor = t.anchor[i]
	}
	first := int32(0)
	if t.first {
		first = 1
	}
	o := t.opt
	t.k("fs_sgd", int64(n), t.p[i], g, t.mom[i], anchor, int64(n), o.LR, o.Momentum, o.WeightDecay, o.ProxMu, first)
}

func (t *trainer) Evaluate(params tensor.List, b model.Batch) (model.EvalStats, error) {
	var st model.EvalStats
	if err := t.tmpl.CheckCompatible(params); err != nil {
		return st, fmt.Errorf("cuda %s: params do not match the model: %w", t.spec, err)
	}
	if err := b.Validate(t.spec); err != nil {
		return st, fmt.Errorf("cuda %s: evaluate: %w", t.spec, err)
	}
	if b.N == 0 {
		return st, nil
	}
	unbind, err := t.d.bind()
	if err != nil {
		return st, err
	}
	defer unbind()
	t.err = nil
	chunk := max(t.capN, evalChunk)
	t.n = min(chunk, b.N)
	t.setup(min(chunk, b.N))
	if t.err != nil {
		return st, t.err
	}
	for i := range params {
		t.upload(t.p[i], params[i].Data)
	}
	in, k, classes := t.spec.InputSize(), int32(min(5, t.spec.Classes)), int32(t.spec.Classes)
	for o := 0; o < b.N; o += chunk {
		n := min(chunk, b.N-o)
		t.forward(b.X[o*in:(o+n)*in], b.Y[o:o+n], n, false)
		t.k("fs_xent", int64(n), t.out, t.ydev, uint64(0), t.loss, int32(n), classes)
		t.k("fs_topk", int64(n), t.out, t.ydev, t.hits, int32(n), classes, k)
		st.LossSum += t.losses(n)
		hits := make([]int32, 2*n)
		if t.err == nil {
			t.fail(t.d.read(unsafe.Pointer(&hits[0]), t.hits, uint64(len(hits))*4))
		}
		for s := 0; s < n; s++ {
			st.Top1 += int64(hits[2*s])
			st.Top5 += int64(hits[2*s+1])
		}
		st.Count += int64(n)
	}
	if t.err != nil {
		return model.EvalStats{}, fmt.Errorf("cuda %s: evaluate: %w", t.spec, t.err)
	}
	return st, nil
}

// checkTrain validates a Train call before any step, as the CPU backend
// does, and returns the largest batch.
func (t *trainer) checkTrain(params tensor.List, batches []model.Batch, opt model.SGD) (int, error) {
	if err := t.tmpl.CheckCompatible(params); err != nil {
		return 0, fmt.Errorf("cuda %s: params do not match the model: %w", t.spec, err)
	}
	if err := opt.Validate(params); err != nil {
		return 0, fmt.Errorf("cuda %s: %w", t.spec, err)
	}
	if len(batches) == 0 {
		return 0, fmt.Errorf("cuda %s: train: no batches", t.spec)
	}
	maxN := 0
	for i, b := range batches {
		if err := b.Validate(t.spec); err != nil {
			return 0, fmt.Errorf("cuda %s: train: batch %d: %w", t.spec, i, err)
		}
		if b.N == 0 {
			return 0, fmt.Errorf("cuda %s: train: batch %d is empty", t.spec, i)
		}
		maxN = max(maxN, b.N)
	}
	return maxN, nil
}

var _ model.Trainer = (*trainer)(nil)
