package cuda

import (
	"github.com/fedscale/fedscale-go/runtime/model"
)

// mod is one compiled layer on the device, runtime/model/cpu's module
// with addresses for slices. forward keeps its input's address for
// backward, which never modifies dy.
type mod interface {
	reserve(t *trainer, n int)
	forward(t *trainer, x uint64) uint64
	backward(t *trainer, dy uint64, needDx bool) uint64
}

// buf is a device buffer that grows with the batch.
type buf struct {
	p   uint64
	cap int64
}

func (b *buf) need(t *trainer, words int) uint64 {
	t.grow(&b.p, &b.cap, int64(words))
	return b.p
}

func compile(l *model.Layer) (mod, error) {
	return model.Compile(l, model.Modules[mod]{
		Leaf: func(l *model.Layer, depthwise bool) mod {
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
		Seq: func(_ *model.Layer, kids []mod) mod { return &seqMod{kids: kids} },
		Residual: func(l *model.Layer, main, short mod) mod {
			return &residualMod{l: l, main: main, short: short}
		},
		Shuffle: func(l *model.Layer, kids []mod) mod { return &shuffleMod{l: l, kids: kids} },
	})
}

type seqMod struct{ kids []mod }

func (m *seqMod) reserve(t *trainer, n int) {
	for _, k := range m.kids {
		k.reserve(t, n)
	}
}

func (m *seqMod) forward(t *trainer, x uint64) uint64 {
	for _, k := range m.kids {
		x = k.forward(t, x)
	}
	return x
}

func (m *seqMod) backward(t *trainer, dy uint64, needDx bool) uint64 {
	for i := len(m.kids) - 1; i >= 0; i-- {
		dy = m.kids[i].backward(t, dy, needDx || i > 0)
	}
	return dy
}

// actBwd passes dy back through activation a whose output y holds, into
// y, and returns it; with no activation it is dy itself.
func actBwd(t *trainer, a model.Act, y, dy uint64, n int) uint64 {
	if a == model.ActNone {
		return dy
	}
	t.k("fs_act_bwd", int64(n), y, dy, y, int64(n), actCode(a))
	return y
}

type residualMod struct {
	l           *model.Layer
	main, short mod
	y, dsum, dx buf
}

func (m *residualMod) reserve(t *trainer, n int) {
	m.main.reserve(t, n)
	if m.short != nil {
		m.short.reserve(t, n)
	}
	m.y.need(t, n*m.l.Out.Size())
	m.dsum.need(t, n*m.l.Out.Size())
	m.dx.need(t, n*m.l.In.Size())
}

func (m *residualMod) forward(t *trainer, x uint64) uint64 {
	a := m.main.forward(t, x)
	s := x
	if m.short != nil {
		s = m.short.forward(t, x)
	}
	n := t.n * m.l.Out.Size()
	t.k("fs_add", int64(n), a, s, m.y.p, int64(n))
	if m.l.Act != model.ActNone {
		t.k("fs_act_fwd", int64(n), m.y.p, int64(n), actCode(m.l.Act))
	}
	return m.y.p
}

func (m *residualMod) backward(t *trainer, dy uint64, needDx bool) uint64 {
	n := t.n * m.l.Out.Size()
	t.k("fs_act_bwd", int64(n), m.dsum.p, dy, m.y.p, int64(n), actCode(m.l.Act))
	d := m.dsum.p
	da := m.main.backward(t, d, needDx)
	ds := d
	if m.short != nil {
		ds = m.short.backward(t, d, needDx)
	}
	if !needDx {
		return 0
	}
	ni := t.n * m.l.In.Size()
	t.k("fs_add", int64(ni), da, ds, m.dx.p, int64(ni))
	return m.dx.p
}

type shuffleMod struct {
	l               *model.Layer
	kids            []mod
	y, d1, d2, dx   buf
	halfIn, halfOut int
	planeOut        int
}

func (m *shuffleMod) reserve(t *trainer, n int) {
	for _, k := range m.kids {
		k.reserve(t, n)
	}
	m.halfOut, m.halfIn, m.planeOut = m.l.Out.Size()/2, m.l.In.Size()/2, m.l.Out.H*m.l.Out.W
	m.y.need(t, n*m.l.Out.Size())
	m.d1.need(t, n*m.halfOut)
	m.d2.need(t, n*m.halfOut)
	m.dx.need(t, n*m.l.In.Size())
}

func (m *shuffleMod) forward(t *trainer, x uint64) uint64 {
	var b1, b2 uint64
	if len(m.kids) == 2 {
		b1 = m.kids[0].forward(t, x)
		b2 = m.kids[1].forward(t, x)
	} else {
		b1 = x
		b2 = m.kids[0].forward(t, off(x, t.n*m.halfIn))
	}
	blk := int64(t.n * m.planeOut)
	half := int32(m.l.Out.C / 2)
	t.k("fs_shuffle_fwd", 2*int64(half)*blk, b1, b2, m.y.p, half, blk)
	return m.y.p
}

func (m *shuffleMod) backward(t *trainer, dy uint64, needDx bool) uint64 {
	blk := int64(t.n * m.planeOut)
	half := int32(m.l.Out.C / 2)
	t.k("fs_shuffle_bwd", 2*int64(half)*blk, dy, m.d1.p, m.d2.p, half, blk)
	ni := t.n * m.l.In.Size()
	if len(m.kids) == 2 {
		a := m.kids[0].backward(t, m.d1.p, needDx)
		b := m.kids[1].backward(t, m.d2.p, needDx)
		if !needDx {
			return 0
		}
		t.k("fs_add", int64(ni), a, b, m.dx.p, int64(ni))
		return m.dx.p
	}
	b := m.kids[0].backward(t, m.d2.p, needDx)
	if !needDx {
		return 0
	}
	h := t.n * m.halfOut // the unchanged half's gradient is d1
	t.copy(m.dx.p, m.d1.p, h)
	t.copy(off(m.dx.p, h), b, ni-h)
	return m.dx.p
}

// bnChunk is kernels.cu's FS_CHUNK: values per partial sum.
const bnChunk = 256

type bnMod struct {
	l                 *model.Layer
	x                 uint64
	y                 buf
	mean, invstd, sum buf // sum holds doubles: 2 per channel, 4 words
	meanD, part       buf // doubles: the channel means, the chunks' partials (2 each)
}

func (m *bnMod) chunks(n int) int { return (n*m.l.In.H*m.l.In.W + bnChunk - 1) / bnChunk }

func (m *bnMod) reserve(t *trainer, n int) {
	m.y.need(t, n*m.l.Out.Size())
	m.mean.need(t, m.l.In.C)
	m.invstd.need(t, m.l.In.C)
	m.sum.need(t, 4*m.l.In.C)
	m.meanD.need(t, 2*m.l.In.C)
	m.part.need(t, 4*m.l.In.C*m.chunks(n))
}

func (m *bnMod) forward(t *trainer, x uint64) uint64 {
	C := int32(m.l.In.C)
	M := int64(t.n * m.l.In.H * m.l.In.W)
	p := m.l.Param
	if !t.train {
		t.k("fs_bn_eval", int64(C)*M, x, m.y.p, t.p[p], t.p[p+1], t.p[p+2], t.p[p+3], C, M, actCode(m.l.Act))
		return m.y.p
	}
	m.x = x
	ch := int32(m.chunks(t.n))
	parts := int64(C) * int64(ch)
	t.k("fs_bn_part", parts, x, uint64(0), m.part.p, C, M, ch)
	t.k("fs_bn_mean", int64(C), m.part.p, m.meanD.p, C, M, ch)
	t.k("fs_bn_part", parts, x, m.meanD.p, m.part.p, C, M, ch)
	t.k("fs_bn_finish", int64(C), m.part.p, m.meanD.p, m.mean.p, m.invstd.p, t.p[p+2], t.p[p+3], C, M, ch)
	t.k("fs_bn_fwd", int64(C)*M, x, m.y.p, m.mean.p, m.invstd.p, t.p[p], t.p[p+1], C, M, actCode(m.l.Act))
	t.k("fs_inc", 1, t.p[p+4])
	return m.y.p
}

func (m *bnMod) backward(t *trainer, dy uint64, needDx bool) uint64 {
	C := int32(m.l.In.C)
	M := int64(t.n * m.l.In.H * m.l.In.W)
	p := m.l.Param
	d := m.y.p
	t.k("fs_act_bwd", int64(C)*M, d, dy, m.y.p, int64(C)*M, actCode(m.l.Act))
	dw, db := t.gbuf[0], t.gbuf[1]
	ch := int32(m.chunks(t.n))
	t.k("fs_bn_bwd_part", int64(C)*int64(ch), d, m.x, m.mean.p, m.invstd.p, m.part.p, C, M, ch)
	t.k("fs_bn_bwd_sums", int64(C), m.part.p, m.sum.p, dw, db, C, ch)
	if needDx {
		t.k("fs_bn_bwd_dx", int64(C)*M, d, m.x, m.mean.p, m.invstd.p, t.p[p], m.sum.p, C, M)
	}
	t.apply(p, dw)
	t.apply(p+1, db)
	if !needDx {
		return 0
	}
	return d
}

type maxPoolMod struct {
	l          *model.Layer
	y, arg, dx buf
}

func (m *maxPoolMod) reserve(t *trainer, n int) {
	m.y.need(t, n*m.l.Out.Size())
	m.arg.need(t, n*m.l.Out.Size())
	m.dx.need(t, n*m.l.In.Size())
}

func (m *maxPoolMod) geom() []any {
	in, out := m.l.In, m.l.Out
	return []any{int32(in.H), int32(in.W), int32(out.H), int32(out.W), int32(m.l.K), int32(m.l.Stride), int32(m.l.Pad)}
}

func (m *maxPoolMod) forward(t *trainer, x uint64) uint64 {
	planes := int64(t.n * m.l.In.C)
	t.k("fs_maxpool_fwd", planes*int64(m.l.Out.H*m.l.Out.W), append([]any{x, m.y.p, m.arg.p, planes}, m.geom()...)...)
	return m.y.p
}

func (m *maxPoolMod) backward(t *trainer, dy uint64, needDx bool) uint64 {
	if !needDx {
		return 0
	}
	planes := int64(t.n * m.l.In.C)
	t.k("fs_maxpool_bwd", planes*int64(m.l.In.H*m.l.In.W), append([]any{dy, m.arg.p, m.dx.p, planes}, m.geom()...)...)
	return m.dx.p
}

type gapMod struct {
	l     *model.Layer
	y, dx buf
}

func (m *gapMod) reserve(t *trainer, n int) {
	m.y.need(t, n*m.l.Out.Size())
	m.dx.need(t, n*m.l.In.Size())
}

func (m *gapMod) forward(t *trainer, x uint64) uint64 {
	planes := int64(t.n * m.l.In.C)
	t.k("fs_gap_fwd", planes, x, m.y.p, planes, int32(m.l.In.H*m.l.In.W))
	return m.y.p
}

func (m *gapMod) backward(t *trainer, dy uint64, needDx bool) uint64 {
	if !needDx {
		return 0
	}
	planes, hw := int64(t.n*m.l.In.C), m.l.In.H*m.l.In.W
	t.k("fs_gap_bwd", planes*int64(hw), dy, m.dx.p, planes, int32(hw))
	return m.dx.p
}

type dropoutMod struct {
	l           *model.Layer
	y, dx, mask buf
	training    bool
}

func (m *dropoutMod) reserve(t *trainer, n int) {
	m.y.need(t, n*m.l.In.Size())
	m.dx.need(t, n*m.l.In.Size())
	m.mask.need(t, n*m.l.In.Size())
}

func (m *dropoutMod) forward(t *trainer, x uint64) uint64 {
	m.training = t.train && m.l.P > 0
	if !m.training {
		return x
	}
	f := m.l.In.Size()
	t.k("fs_dropout_fwd", int64(f*t.n), x, m.y.p, m.mask.p, int32(f), int32(t.n), m.l.P, t.seed, int32(t.step), int32(m.l.Index))
	return m.y.p
}

func (m *dropoutMod) backward(t *trainer, dy uint64, needDx bool) uint64 {
	if !needDx {
		return 0
	}
	if !m.training {
		return dy
	}
	n := int64(t.n * m.l.In.Size())
	t.k("fs_mul", n, dy, m.mask.p, m.dx.p, n)
	return m.dx.p
}

// linearMod is y = act(W·x + b). A 1x1 input is already feature-major,
// [features][n]; a larger one is flattened to sample-major [n][features]
// first, so each product is one cuBLAS call.
type linearMod struct {
	l           *model.Layer
	x           uint64
	flat, y, dx buf
	dflat       buf
}

func (m *linearMod) reserve(t *trainer, n int) {
	m.y.need(t, n*m.l.Out.C)
	m.dx.need(t, n*m.l.In.Size())
	if m.l.In.H*m.l.In.W > 1 {
		m.flat.need(t, n*m.l.In.Size())
		m.dflat.need(t, n*m.l.In.Size())
	}
}

func (m *linearMod) forward(t *trainer, x uint64) uint64 {
	in, out, n := m.l.In.Size(), m.l.Out.C, t.n
	w, b := t.p[m.l.Param], t.p[m.l.Param+1]
	m.x = x
	if hw := m.l.In.H * m.l.In.W; hw == 1 {
		t.gemm(false, false, out, n, in, w, in, x, n, m.y.p, n, false)
	} else {
		t.k("fs_flatten", int64(in*n), x, m.flat.p, int32(m.l.In.C), int32(n), int32(hw))
		t.gemm(false, true, out, n, in, w, in, m.flat.p, in, m.y.p, n, false)
	}
	t.k("fs_add_bias", int64(out*n), m.y.p, b, int32(out), int32(n))
	if m.l.Act != model.ActNone {
		t.k("fs_act_fwd", int64(out*n), m.y.p, int64(out*n), actCode(m.l.Act))
	}
	return m.y.p
}

func (m *linearMod) backward(t *trainer, dy uint64, needDx bool) uint64 {
	in, out, n := m.l.In.Size(), m.l.Out.C, t.n
	dy = actBwd(t, m.l.Act, m.y.p, dy, out*n)
	w := t.p[m.l.Param]
	dw, db := t.gbuf[0], t.gbuf[1]
	t.k("fs_row_sums", int64(out), dy, db, int32(out), int32(n))
	var dx uint64
	if hw := m.l.In.H * m.l.In.W; hw == 1 {
		t.gemm(false, true, out, in, n, dy, n, m.x, n, dw, in, false)
		if needDx {
			dx = m.dx.p
			t.gemm(true, false, in, n, out, w, in, dy, n, dx, n, false)
		}
	} else {
		t.gemm(false, false, out, in, n, dy, n, m.flat.p, in, dw, in, false)
		if needDx {
			dx = m.dx.p
			t.gemm(true, false, n, in, out, dy, n, w, in, m.dflat.p, in, false)
			t.k("fs_unflatten", int64(in*n), m.dflat.p, dx, int32(m.l.In.C), int32(n), int32(hw))
		}
	}
	t.apply(m.l.Param, dw)
	t.apply(m.l.Param+1, db)
	return dx
}

// convMod is a dense convolution: y = act(W × im2col(x) + b); a 1x1
// stride-1 convolution multiplies x itself.
type convMod struct {
	l     *model.Layer
	x     uint64
	y, dx buf
}

func (m *convMod) direct() bool { return m.l.K == 1 && m.l.Stride == 1 && m.l.Pad == 0 }

func (m *convMod) dims(n int) (kk, cols int) {
	return m.l.In.C * m.l.K * m.l.K, n * m.l.Out.H * m.l.Out.W
}

func (m *convMod) reserve(t *trainer, n int) {
	m.y.need(t, n*m.l.Out.Size())
	m.dx.need(t, n*m.l.In.Size())
	kk, cols := m.dims(n)
	if !m.direct() {
		t.grow(&t.col, &t.colCap, int64(kk)*int64(cols))
	}
}

func (m *convMod) im2col(t *trainer, x uint64, name string, dst uint64) {
	l := m.l
	kk, cols := m.dims(t.n)
	t.k(name, int64(kk)*int64(cols), x, dst, int32(t.n), int32(l.In.C), int32(l.In.H), int32(l.In.W),
		int32(l.K), int32(l.Stride), int32(l.Pad), int32(l.Out.H), int32(l.Out.W))
}

func (m *convMod) forward(t *trainer, x uint64) uint64 {
	m.x = x
	kk, cols := m.dims(t.n)
	col := x
	if !m.direct() {
		col = t.col
		m.im2col(t, x, "fs_im2col", col)
	}
	oc := m.l.Out.C
	t.gemm(false, false, oc, cols, kk, t.p[m.l.Param], kk, col, cols, m.y.p, cols, false)
	if m.l.Bias {
		t.k("fs_add_bias", int64(oc*cols), m.y.p, t.p[m.l.Param+1], int32(oc), int32(cols))
	}
	if m.l.Act != model.ActNone {
		t.k("fs_act_fwd", int64(oc*cols), m.y.p, int64(oc*cols), actCode(m.l.Act))
	}
	return m.y.p
}

func (m *convMod) backward(t *trainer, dy uint64, needDx bool) uint64 {
	kk, cols := m.dims(t.n)
	oc := m.l.Out.C
	dy = actBwd(t, m.l.Act, m.y.p, dy, oc*cols)
	db := t.gbuf[1]
	if m.l.Bias {
		t.k("fs_row_sums", int64(oc), dy, db, int32(oc), int32(cols))
	}
	col := m.x
	if !m.direct() {
		col = t.col
		m.im2col(t, m.x, "fs_im2col", col)
	}
	dw := t.gbuf[0]
	t.gemm(false, true, oc, kk, cols, dy, cols, col, cols, dw, kk, false)
	var dx uint64
	switch {
	case !needDx:
	case m.direct():
		dx = m.dx.p
		t.gemm(true, false, kk, cols, oc, t.p[m.l.Param], kk, dy, cols, dx, cols, false)
	default:
		dx = m.dx.p
		t.gemm(true, false, kk, cols, oc, t.p[m.l.Param], kk, dy, cols, t.col, cols, false)
		l := m.l
		t.k("fs_col2im", int64(t.n*l.In.Size()), t.col, dx, int32(t.n), int32(l.In.C), int32(l.In.H), int32(l.In.W),
			int32(l.K), int32(l.Stride), int32(l.Pad), int32(l.Out.H), int32(l.Out.W))
	}
	t.apply(m.l.Param, dw)
	if m.l.Bias {
		t.apply(m.l.Param+1, db)
	}
	return dx
}

// dwConvMod is a depthwise convolution (groups = channels).
type dwConvMod struct {
	l     *model.Layer
	x     uint64
	y, dx buf
}

func (m *dwConvMod) reserve(t *trainer, n int) {
	m.y.need(t, n*m.l.Out.Size())
	m.dx.need(t, n*m.l.In.Size())
}

func (m *dwConvMod) geom(t *trainer) []any {
	l := m.l
	return []any{int32(l.In.C), int32(t.n), int32(l.In.H), int32(l.In.W), int32(l.Out.H), int32(l.Out.W), int32(l.K), int32(l.Stride), int32(l.Pad)}
}

func (m *dwConvMod) forward(t *trainer, x uint64) uint64 {
	m.x = x
	t.k("fs_dwconv_fwd", int64(t.n*m.l.Out.Size()), append([]any{x, t.p[m.l.Param], m.y.p}, m.geom(t)...)...)
	return m.y.p
}

func (m *dwConvMod) backward(t *trainer, dy uint64, needDx bool) uint64 {
	l := m.l
	dw := t.gbuf[0]
	t.k("fs_dwconv_bwd_w", int64(l.In.C*l.K*l.K), append([]any{dy, m.x, dw}, m.geom(t)...)...)
	var dx uint64
	if needDx {
		dx = m.dx.p
		t.k("fs_dwconv_bwd_x", int64(t.n*l.In.Size()), append([]any{dy, t.p[l.Param], dx}, m.geom(t)...)...)
	}
	t.apply(l.Param, dw)
	return dx
}
