package cpu

import (
	"math"

	"github.com/fedscale/fedscale-go/runtime/model"
	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// Every architecture runs on a graph of modules compiled from model.Arch.
// Inside the network activations are channel-major, [C][N][H][W]
// (every channel of the batch contiguous): a convolution is then one matrix
// product W[oc, c·k·k] × col[c·k·k, N·oh·ow] for the whole batch, batch norm
// reads each channel as one block, and channel split, concatenation and
// shuffle are block copies.

// runCtx is the state of one forward/backward pass shared by every module.
//
// A parameter's gradient lives only in scratch memory: each module
// computes it with grad, and hands it to apply once it no longer reads the
// parameter (after its input gradient), so the trainer updates the weights
// layer by layer and never holds a gradient for the whole model.
type runCtx struct {
	p     tensor.List
	apply func(i int, g []float32)
	gbuf  [2][]float32
	train bool
	n     int
	seed  uint64
	step  int
	col   []float32 // im2col scratch shared by every convolution
}

// grad returns scratch for parameter i's gradient; slot 0 and 1 let a
// module hold two gradients (weight and bias) at once.
func (c *runCtx) grad(i, slot int) []float32 {
	n := len(c.p[i].Data)
	c.gbuf[slot] = grow(c.gbuf[slot], n)
	return c.gbuf[slot]
}

// need returns the shared im2col scratch grown to n values. A
// convolution's backward pass uses it twice in turn: for the input laid out
// for the weight gradient, then for the input gradient before col2im.
func (c *runCtx) need(n int) []float32 {
	c.col = grow(c.col, n)
	return c.col
}

// module is one compiled layer. Buffers are owned by the module and sized
// by reserve; forward keeps a reference to its input for backward, which
// never modifies dy.
type module interface {
	reserve(n int)
	forward(c *runCtx, x []float32) []float32
	backward(c *runCtx, dy []float32, needDx bool) []float32
}

// grow returns b with room for n values, reallocating only to grow.
func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// compile turns a layer tree into modules.
func compile(l *model.Layer) (module, error) {
	return model.Compile(l, model.Modules[module]{
		Leaf: func(l *model.Layer, depthwise bool) module {
			switch l.Kind {
			case model.Conv:
				if depthwise {
					return &dwConvMod{l: l}
				}
				return &convMod{l: l}
			case model.BatchNorm:
				return &bnMod{l: l}
			case model.MaxPool:
				return &maxPoolMod{l: l}
			case model.GlobalAvgPool:
				return &gapMod{l: l}
			case model.Linear:
				return &linearMod{l: l}
			}
			return &dropoutMod{l: l} // model.Dropout, the last leaf kind
		},
		Seq: func(_ *model.Layer, kids []module) module { return &seqMod{kids: kids} },
		Residual: func(l *model.Layer, main, short module) module {
			return &residualMod{l: l, main: main, short: short}
		},
		Shuffle: func(l *model.Layer, kids []module) module { return &shuffleMod{l: l, kids: kids} },
	})
}

// seqMod runs its children in order.
type seqMod struct{ kids []module }

func (m *seqMod) reserve(n int) {
	for _, k := range m.kids {
		k.reserve(n)
	}
}

func (m *seqMod) forward(c *runCtx, x []float32) []float32 {
	for _, k := range m.kids {
		x = k.forward(c, x)
	}
	return x
}

func (m *seqMod) backward(c *runCtx, dy []float32, needDx bool) []float32 {
	for i := len(m.kids) - 1; i >= 0; i-- {
		dy = m.kids[i].backward(c, dy, needDx || i > 0)
	}
	return dy
}

// reluInPlace clamps negative values to zero. NaN passes through, so a
// diverging model still shows in the loss.
func reluInPlace(x []float32) {
	for i, v := range x {
		if v < 0 {
			x[i] = 0
		}
	}
}

// activate applies a in place.
func activate(a model.Act, y []float32) {
	switch a {
	case model.ActReLU:
		reluInPlace(y)
	case model.ActReLU6:
		for i, v := range y {
			if v < 0 {
				y[i] = 0
			} else if v > 6 {
				y[i] = 6
			}
		}
	}
}

// activeGrad writes into d the gradient dy passed back through activation
// a, whose output was y.
func activeGrad(a model.Act, d, dy, y []float32) {
	d, y = d[:len(dy)], y[:len(dy)]
	switch a {
	case model.ActReLU:
		for i, v := range y {
			if v > 0 {
				d[i] = dy[i]
			} else {
				d[i] = 0
			}
		}
	case model.ActReLU6:
		for i, v := range y {
			if v > 0 && v < 6 {
				d[i] = dy[i]
			} else {
				d[i] = 0
			}
		}
	default:
		copy(d, dy)
	}
}

// sum sets dst[i] = a[i] + b[i] and returns dst.
func sum(dst, a, b []float32) []float32 {
	a, b = a[:len(dst)], b[:len(dst)]
	for i, v := range a {
		dst[i] = v + b[i]
	}
	return dst
}

// residualMod is act(main(x) + shortcut(x)).
type residualMod struct {
	l           *model.Layer
	main, short module
	y, dsum, dx []float32
}

func (m *residualMod) reserve(n int) {
	m.main.reserve(n)
	if m.short != nil {
		m.short.reserve(n)
	}
	m.y = grow(m.y, n*m.l.Out.Size())
	m.dsum = grow(m.dsum, n*m.l.Out.Size())
	m.dx = grow(m.dx, n*m.l.In.Size())
}

func (m *residualMod) forward(c *runCtx, x []float32) []float32 {
	a := m.main.forward(c, x)
	s := x
	if m.short != nil {
		s = m.short.forward(c, x)
	}
	y := sum(m.y[:c.n*m.l.Out.Size()], a, s)
	activate(m.l.Act, y)
	return y
}

func (m *residualMod) backward(c *runCtx, dy []float32, needDx bool) []float32 {
	d := m.dsum[:c.n*m.l.Out.Size()]
	activeGrad(m.l.Act, d, dy, m.y)
	da := m.main.backward(c, d, needDx)
	ds := d
	if m.short != nil {
		ds = m.short.backward(c, d, needDx)
	}
	if !needDx {
		return nil
	}
	return sum(m.dx[:c.n*m.l.In.Size()], da, ds)
}

// shuffleMod is ShuffleNetV2's unit (see model.Shuffle).
type shuffleMod struct {
	l        *model.Layer
	kids     []module
	y        []float32
	d1, d2   []float32 // the output gradient unshuffled into the two halves
	dx       []float32
	halfIn   int // values per sample of one half of the input (stride 1)
	halfOut  int
	planeOut int
}

func (m *shuffleMod) reserve(n int) {
	for _, k := range m.kids {
		k.reserve(n)
	}
	m.halfOut = m.l.Out.Size() / 2
	m.halfIn = m.l.In.Size() / 2
	m.planeOut = m.l.Out.H * m.l.Out.W
	m.y = grow(m.y, n*m.l.Out.Size())
	m.d1 = grow(m.d1, n*m.halfOut)
	m.d2 = grow(m.d2, n*m.halfOut)
	m.dx = grow(m.dx, n*m.l.In.Size())
}

func (m *shuffleMod) forward(c *runCtx, x []float32) []float32 {
	var b1, b2 []float32
	if len(m.kids) == 2 {
		b1 = m.kids[0].forward(c, x)
		b2 = m.kids[1].forward(c, x)
	} else {
		b1 = x[:c.n*m.halfIn]
		b2 = m.kids[0].forward(c, x[c.n*m.halfIn:c.n*2*m.halfIn])
	}
	blk := c.n * m.planeOut // one channel of the batch
	y := m.y[:c.n*m.l.Out.Size()]
	half := m.l.Out.C / 2
	for j := 0; j < half; j++ {
		copy(y[(2*j)*blk:(2*j+1)*blk], b1[j*blk:])
		copy(y[(2*j+1)*blk:(2*j+2)*blk], b2[j*blk:])
	}
	return y
}

func (m *shuffleMod) backward(c *runCtx, dy []float32, needDx bool) []float32 {
	blk := c.n * m.planeOut
	half := m.l.Out.C / 2
	d1, d2 := m.d1[:half*blk], m.d2[:half*blk]
	for j := 0; j < half; j++ {
		copy(d1[j*blk:(j+1)*blk], dy[(2*j)*blk:])
		copy(d2[j*blk:(j+1)*blk], dy[(2*j+1)*blk:])
	}
	if len(m.kids) == 2 {
		a := m.kids[0].backward(c, d1, needDx)
		b := m.kids[1].backward(c, d2, needDx)
		if !needDx {
			return nil
		}
		return sum(m.dx[:c.n*m.l.In.Size()], a, b)
	}
	b := m.kids[0].backward(c, d2, needDx)
	if !needDx {
		return nil
	}
	dx := m.dx[:c.n*m.l.In.Size()]
	copy(dx, d1)
	copy(dx[len(d1):], b)
	return dx
}

// bnMod is batch norm with PyTorch's semantics, then its activation.
// bnMod is batch normalisation with its activation fused in. It keeps one
// buffer: the backward pass recomputes the normalised input from the input
// (the previous layer's output, intact until the next forward pass) and
// writes the input gradient over the output, which every consumer of it
// has used by then (the backward pass runs in reverse order).
type bnMod struct {
	l            *model.Layer
	x, y         []float32
	invstd, mean []float32
}

func (m *bnMod) reserve(n int) {
	m.y = grow(m.y, n*m.l.Out.Size())
	if m.invstd == nil {
		m.invstd = make([]float32, m.l.In.C)
		m.mean = make([]float32, m.l.In.C)
	}
}

const (
	bnEps      = 1e-5
	bnMomentum = 0.1
)

func (m *bnMod) forward(c *runCtx, x []float32) []float32 {
	C := m.l.In.C
	M := c.n * m.l.In.H * m.l.In.W
	w, b := c.p[m.l.Param].Data, c.p[m.l.Param+1].Data
	rm, rv := c.p[m.l.Param+2].Data, c.p[m.l.Param+3].Data
	y := m.y[:C*M]
	if !c.train {
		for ch := 0; ch < C; ch++ {
			inv := 1 / math.Sqrt(float64(rv[ch])+bnEps)
			alpha := float32(inv * float64(w[ch]))
			beta := float32(float64(b[ch]) - float64(rm[ch])*inv*float64(w[ch]))
			xs, ys := x[ch*M:(ch+1)*M], y[ch*M:(ch+1)*M]
			for i, v := range xs {
				ys[i] = v*alpha + beta
			}
		}
		activate(m.l.Act, y)
		return y
	}
	m.x = x[:C*M]
	for ch := 0; ch < C; ch++ {
		xs := x[ch*M : (ch+1)*M]
		var sum float64
		for _, v := range xs {
			sum += float64(v)
		}
		mean := sum / float64(M)
		var ss float64
		for _, v := range xs {
			d := float64(v) - mean
			ss += d * d
		}
		variance := ss / float64(M)
		inv := 1 / math.Sqrt(variance+bnEps)
		m.invstd[ch], m.mean[ch] = float32(inv), float32(mean)
		fm, fi := float32(mean), float32(inv)
		wc, bc := w[ch], b[ch]
		ys := y[ch*M : (ch+1)*M]
		ys = ys[:len(xs)]
		for i, v := range xs {
			ys[i] = (v-fm)*fi*wc + bc
		}
		// While the channel is still in cache.
		activate(m.l.Act, ys)
		rm[ch] = float32((1-bnMomentum)*float64(rm[ch]) + bnMomentum*mean)
		rv[ch] = float32((1-bnMomentum)*float64(rv[ch]) + bnMomentum*variance*float64(M)/float64(M-1))
	}
	c.p[m.l.Param+4].Data[0]++
	return y
}

func (m *bnMod) backward(c *runCtx, dy []float32, needDx bool) []float32 {
	C := m.l.In.C
	M := c.n * m.l.In.H * m.l.In.W
	w := c.p[m.l.Param].Data
	dw, db := c.grad(m.l.Param, 0), c.grad(m.l.Param+1, 1)
	d := m.y[:C*M]
	activeGrad(m.l.Act, d, dy[:C*M], m.y)
	for ch := 0; ch < C; ch++ {
		ds, xs := d[ch*M:(ch+1)*M], m.x[ch*M:(ch+1)*M]
		xs = xs[:len(ds)]
		fm, fi := m.mean[ch], m.invstd[ch]
		var sdy, sdyh float64
		for i, v := range ds {
			sdy += float64(v)
			sdyh += float64(v) * float64((xs[i]-fm)*fi)
		}
		db[ch] = float32(sdy)
		dw[ch] = float32(sdyh)
		if !needDx {
			continue
		}
		k := float32(float64(w[ch]) * float64(m.invstd[ch]))
		mdy, mdyh := float32(sdy/float64(M)), float32(sdyh/float64(M))
		for i, v := range ds {
			ds[i] = k * (v - mdy - (xs[i]-fm)*fi*mdyh)
		}
	}
	c.apply(m.l.Param, dw)
	c.apply(m.l.Param+1, db)
	if !needDx {
		return nil
	}
	return d
}

// maxPoolMod is max pooling; padding is never selected, and the first of
// equal values wins, as in PyTorch's CPU kernel.
type maxPoolMod struct {
	l   *model.Layer
	y   []float32
	arg []int32 // the input offset (within its plane) each output took
	dx  []float32
}

func (m *maxPoolMod) reserve(n int) {
	m.y = grow(m.y, n*m.l.Out.Size())
	m.dx = grow(m.dx, n*m.l.In.Size())
	if cap(m.arg) < n*m.l.Out.Size() {
		m.arg = make([]int32, n*m.l.Out.Size())
	}
}

func (m *maxPoolMod) forward(c *runCtx, x []float32) []float32 {
	in, out := m.l.In, m.l.Out
	k, st, pad := m.l.K, m.l.Stride, m.l.Pad
	hw, ohw := in.H*in.W, out.H*out.W
	y := m.y[:c.n*out.Size()]
	arg := m.arg[:len(y)]
	for pl := 0; pl < c.n*in.C; pl++ {
		plane := x[pl*hw : (pl+1)*hw]
		ys, as := y[pl*ohw:(pl+1)*ohw], arg[pl*ohw:(pl+1)*ohw]
		for oy := 0; oy < out.H; oy++ {
			y0, y1 := max(oy*st-pad, 0), min(oy*st-pad+k, in.H)
			for ox := 0; ox < out.W; ox++ {
				x0, x1 := max(ox*st-pad, 0), min(ox*st-pad+k, in.W)
				best, bi := float32(math.Inf(-1)), int32(y0*in.W+x0)
				for iy := y0; iy < y1; iy++ {
					for ix := x0; ix < x1; ix++ {
						if v := plane[iy*in.W+ix]; v > best || v != v {
							best, bi = v, int32(iy*in.W+ix)
							if v != v {
								goto done
							}
						}
					}
				}
			done:
				ys[oy*out.W+ox], as[oy*out.W+ox] = best, bi
			}
		}
	}
	return y
}

func (m *maxPoolMod) backward(c *runCtx, dy []float32, needDx bool) []float32 {
	if !needDx {
		return nil
	}
	in, out := m.l.In, m.l.Out
	hw, ohw := in.H*in.W, out.H*out.W
	dx := m.dx[:c.n*in.Size()]
	clear(dx)
	for pl := 0; pl < c.n*in.C; pl++ {
		dp := dx[pl*hw : (pl+1)*hw]
		for q, a := range m.arg[pl*ohw : (pl+1)*ohw] {
			dp[a] += dy[pl*ohw+q]
		}
	}
	return dx
}

// gapMod averages each plane.
type gapMod struct {
	l     *model.Layer
	y, dx []float32
}

func (m *gapMod) reserve(n int) {
	m.y = grow(m.y, n*m.l.Out.Size())
	m.dx = grow(m.dx, n*m.l.In.Size())
}

func (m *gapMod) forward(c *runCtx, x []float32) []float32 {
	hw := m.l.In.H * m.l.In.W
	y := m.y[:c.n*m.l.In.C]
	for pl := range y {
		var s float32
		for _, v := range x[pl*hw : (pl+1)*hw] {
			s += v
		}
		y[pl] = s / float32(hw)
	}
	return y
}

func (m *gapMod) backward(c *runCtx, dy []float32, needDx bool) []float32 {
	if !needDx {
		return nil
	}
	hw := m.l.In.H * m.l.In.W
	dx := m.dx[:c.n*m.l.In.Size()]
	inv := 1 / float32(hw)
	for pl, d := range dy[:c.n*m.l.In.C] {
		v := d * inv
		ds := dx[pl*hw : (pl+1)*hw]
		for i := range ds {
			ds[i] = v
		}
	}
	return dx
}

// dropoutMod zeroes inputs by model.DropoutUniform in training.
type dropoutMod struct {
	l        *model.Layer
	y, dx    []float32
	mask     []float32 // 0 or 1/(1-p) per value
	training bool
}

func (m *dropoutMod) reserve(n int) {
	sz := n * m.l.In.Size()
	m.y = grow(m.y, sz)
	m.dx = grow(m.dx, sz)
	m.mask = grow(m.mask, sz)
}

func (m *dropoutMod) forward(c *runCtx, x []float32) []float32 {
	m.training = c.train && m.l.P > 0
	if !m.training {
		return x
	}
	f := m.l.In.Size() // features per sample; the layout is [f][n]
	scale := 1 / (1 - m.l.P)
	y, mask := m.y[:c.n*f], m.mask[:c.n*f]
	for j := 0; j < f; j++ {
		for s := 0; s < c.n; s++ {
			v := float32(0)
			if model.DropoutUniform(c.seed, c.step, m.l.Index, s*f+j) >= m.l.P {
				v = scale
			}
			mask[j*c.n+s] = v
			y[j*c.n+s] = x[j*c.n+s] * v
		}
	}
	return y
}

func (m *dropoutMod) backward(c *runCtx, dy []float32, needDx bool) []float32 {
	if !needDx {
		return nil
	}
	if !m.training {
		return dy
	}
	dx := m.dx[:c.n*m.l.In.Size()]
	for i, v := range m.mask[:len(dx)] {
		dx[i] = dy[i] * v
	}
	return dx
}

// linearMod is y = act(W·x + b) over the flattened input. A 1×1 input is
// already feature-major, [features][n]; a larger one is C blocks of
// sample-major planes, [C][n][H·W], and each product runs over them one
// channel at a time: that channel's columns of W against its block, read
// transposed. Accumulating channel after channel continues each output's
// one chain of multiply-adds over the features in flattened order (see
// package sgemm), so the result is the flat product's to the bit, without
// a transposed copy of the input.
type linearMod struct {
	l     *model.Layer
	x     []float32
	y, dx []float32
}

func (m *linearMod) reserve(n int) {
	m.y = grow(m.y, n*m.l.Out.C)
	m.dx = grow(m.dx, n*m.l.In.Size())
}

func (m *linearMod) forward(c *runCtx, x []float32) []float32 {
	in, out, n := m.l.In.Size(), m.l.Out.C, c.n
	m.x = x[:in*n]
	w, b := c.p[m.l.Param].Data, c.p[m.l.Param+1].Data
	y := m.y[:out*n]
	if hw := m.l.In.H * m.l.In.W; hw == 1 {
		gemm(false, false, out, n, in, w, in, m.x, n, y, n, false)
	} else {
		for ch := 0; ch < m.l.In.C; ch++ {
			gemm(false, true, out, n, hw, w[ch*hw:], in, m.x[ch*n*hw:], hw, y, n, ch > 0)
		}
	}
	addBias(y, b, n)
	activate(m.l.Act, y)
	return y
}

func (m *linearMod) backward(c *runCtx, dy []float32, needDx bool) []float32 {
	in, out, n := m.l.In.Size(), m.l.Out.C, c.n
	dy = actGrad(m.l.Act, m.y[:out*n], dy[:out*n])
	w := c.p[m.l.Param].Data
	dw, db := c.grad(m.l.Param, 0), c.grad(m.l.Param+1, 1)
	rowSums(db, dy, n)
	var dx []float32
	if needDx {
		dx = m.dx[:in*n]
	}
	if hw := m.l.In.H * m.l.In.W; hw == 1 {
		gemm(false, true, out, in, n, dy, n, m.x, n, dw, in, false)
		if needDx {
			gemm(true, false, in, n, out, w, in, dy, n, dx, n, false)
		}
	} else {
		for ch := 0; ch < m.l.In.C; ch++ {
			gemm(false, false, out, hw, n, dy, n, m.x[ch*n*hw:], hw, dw[ch*hw:], in, false)
			if needDx {
				gemm(true, false, n, hw, out, dy, n, w[ch*hw:], in, dx[ch*n*hw:], hw, false)
			}
		}
	}
	c.apply(m.l.Param, dw)
	c.apply(m.l.Param+1, db)
	return dx
}

// addBias adds b[o] to row o of the [len(b)][n] activations y.
func addBias(y, b []float32, n int) {
	for o, v := range b {
		row := y[o*n : (o+1)*n]
		for i := range row {
			row[i] += v
		}
	}
}

// rowSums sets db[o] to the sum of row o of the [len(db)][n] gradient dy:
// a bias's gradient.
func rowSums(db, dy []float32, n int) {
	for o := range db {
		var s float32
		for _, v := range dy[o*n : (o+1)*n] {
			s += v
		}
		db[o] = s
	}
}

// actGrad returns dy passed back through a fused activation a. The
// module's output y, which the caller no longer needs, receives the
// result; with ActNone it is dy itself.
func actGrad(a model.Act, y, dy []float32) []float32 {
	if a == model.ActNone {
		return dy
	}
	activeGrad(a, y, dy, y)
	return y
}
