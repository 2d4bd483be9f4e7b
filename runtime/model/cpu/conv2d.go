package cpu

import (
	"github.com/fedscale/fedscale-go/runtime/model"
	"github.com/fedscale/fedscale-go/runtime/model/cpu/sgemm"
)

// gemm is the matrix product every dense layer goes through.
var gemm = sgemm.Gemm

// convMod is a dense (groups 1) convolution on channel-major activations:
// y[oc, N·oh·ow] = act(W[oc, c·k·k] × im2col(x) + b), the bias and the
// activation only where the layer has them. A 1×1 stride-1 convolution
// multiplies x itself.
type convMod struct {
	l     *model.Layer
	x     []float32
	y, dx []float32
}

func (m *convMod) direct() bool { return m.l.K == 1 && m.l.Stride == 1 && m.l.Pad == 0 }

func (m *convMod) reserve(n int) {
	m.y = grow(m.y, n*m.l.Out.Size())
	m.dx = grow(m.dx, n*m.l.In.Size())
}

// dims returns the product's K (rows of col) and N (its columns).
func (m *convMod) dims(n int) (kk, cols int) {
	return m.l.In.C * m.l.K * m.l.K, n * m.l.Out.H * m.l.Out.W
}

func (m *convMod) forward(c *runCtx, x []float32) []float32 {
	m.x = x[:c.n*m.l.In.Size()]
	kk, cols := m.dims(c.n)
	col := m.x
	if !m.direct() {
		col = c.need(kk * cols)
		im2colBatch(col, m.x, m.l, c.n)
	}
	y := m.y[:m.l.Out.C*cols]
	gemm(false, false, m.l.Out.C, cols, kk, c.p[m.l.Param].Data, kk, col, cols, y, cols, false)
	if m.l.Bias {
		addBias(y, c.p[m.l.Param+1].Data, cols)
	}
	activate(m.l.Act, y)
	return y
}

func (m *convMod) backward(c *runCtx, dy []float32, needDx bool) []float32 {
	kk, cols := m.dims(c.n)
	oc := m.l.Out.C
	dy = actGrad(m.l.Act, m.y[:oc*cols], dy[:oc*cols])
	var db []float32
	if m.l.Bias {
		db = c.grad(m.l.Param+1, 1)
		rowSums(db, dy, cols)
	}
	col := m.x
	if !m.direct() {
		// The weight gradient lays the input out again rather than keep
		// each convolution's im2col from the forward pass: that costs
		// about 5% of a ResNet-18 step and saves 23 MB per trainer at
		// batch 20 (the whole network's im2col instead of the largest).
		col = c.need(kk * cols)
		im2colBatch(col, m.x, m.l, c.n)
	}
	dw := c.grad(m.l.Param, 0)
	gemm(false, true, oc, kk, cols, dy, cols, col, cols, dw, kk, false)
	var dx []float32
	switch {
	case !needDx:
	case m.direct():
		dx = m.dx[:c.n*m.l.In.Size()]
		gemm(true, false, kk, cols, oc, c.p[m.l.Param].Data, kk, dy, cols, dx, cols, false)
	default:
		dx = m.dx[:c.n*m.l.In.Size()]
		dcol := c.need(kk * cols) // col is spent: the weight gradient is done
		gemm(true, false, kk, cols, oc, c.p[m.l.Param].Data, kk, dy, cols, dcol, cols, false)
		col2imBatch(dx, dcol, m.l, c.n)
	}
	c.apply(m.l.Param, dw)
	if m.l.Bias {
		c.apply(m.l.Param+1, db)
	}
	return dx
}

// tapSpan returns the output columns [lo,hi) of convolution l that read
// inside the image through kernel column j (the others read padding).
func tapSpan(l *model.Layer, j int) (lo, hi int) {
	lo = min(max(0, (l.Pad-j+l.Stride-1)/l.Stride), l.Out.W)
	hi = max(min(l.Out.W, (l.In.W+l.Pad-j+l.Stride-1)/l.Stride), lo)
	return lo, hi
}

// im2colBatch lays the channel-major batch x out as a (C·k·k)×(N·oh·ow) matrix:
// row (c,i,j), column (s,oy,ox) holds the input pixel output (oy,ox) of
// sample s sees through tap (i,j), or 0 in the padding.
func im2colBatch(col, x []float32, l *model.Layer, n int) { colSweep(col, x, l, n, true) }

// col2imBatch sets dx to the sum, over every tap, of the column gradients
// that im2colBatch's copies received: the adjoint of im2col.
func col2imBatch(dx, dcol []float32, l *model.Layer, n int) {
	clear(dx[:n*l.In.Size()])
	colSweep(dcol, dx, l, n, false)
}

// colSweep pairs every im2col row segment (tap, sample, output row) with
// the input row it reads, in one order for both directions: gather copies
// the input into col (zeros in the padding), scatter adds col back into x.
func colSweep(col, x []float32, l *model.Layer, n int, gather bool) {
	in, out := l.In, l.Out
	k, st, pad := l.K, l.Stride, l.Pad
	hw, ohw := in.H*in.W, out.H*out.W
	cols := n * ohw
	for ch := 0; ch < in.C; ch++ {
		for i := 0; i < k; i++ {
			for j := 0; j < k; j++ {
				row := col[((ch*k+i)*k+j)*cols:][:cols]
				lo, hi := tapSpan(l, j)
				if st == 1 && out.W == in.W {
					sameSweep(row, x[ch*n*hw:][:n*hw], l, n, i, j, lo, hi, gather)
					continue
				}
				for s := 0; s < n; s++ {
					for oy := 0; oy < out.H; oy++ {
						r := row[s*ohw+oy*out.W:][:out.W]
						iy := oy*st + i - pad
						if iy < 0 || iy >= in.H {
							if gather {
								clear(r)
							}
							continue
						}
						xr := x[((ch*n+s)*in.H+iy)*in.W:][:in.W]
						if gather {
							gatherRow(r, xr, lo, hi, j-pad, st)
						} else {
							scatterRow(xr, r, lo, hi, j-pad, st)
						}
					}
				}
			}
		}
	}
}

// gatherRow sets d[ox] to src[ox*st+off] for ox in [lo,hi) and to 0
// elsewhere. Rows are short (32 to 1 wide): plain loops beat copy's and
// clear's calls.
func gatherRow(d, src []float32, lo, hi, off, st int) {
	for q := 0; q < lo; q++ {
		d[q] = 0
	}
	if st == 1 {
		copy(d[lo:hi], src[lo+off:])
	} else {
		for ox := lo; ox < hi; ox++ {
			d[ox] = src[ox*st+off]
		}
	}
	for q := hi; q < len(d); q++ {
		d[q] = 0
	}
}

// scatterRow adds r[ox] to dst[ox*st+off] for ox in [lo,hi): gatherRow's
// adjoint.
func scatterRow(dst, r []float32, lo, hi, off, st int) {
	if st == 1 {
		d := dst[lo+off:][:hi-lo]
		for q, v := range r[lo:hi] {
			d[q] += v
		}
		return
	}
	for ox := lo; ox < hi; ox++ {
		dst[ox*st+off] += r[ox]
	}
}

// sameSweep is colSweep for the tap (i,j) of one channel's n planes when
// the convolution keeps the width (stride 1, "same" padding): the output
// rows that read inside the image are then one contiguous run of the
// plane shifted by the tap, moved at once. The columns that fall in the
// padding are zeroed in the row, after the gather (they copied pixels of
// the neighbouring image row) or before the scatter (their gradient
// belongs to no input; adding the zeros leaves every input's sum as the
// per-row loop makes it).
func sameSweep(row, planes []float32, l *model.Layer, n, i, j, lo, hi int, gather bool) {
	in, out := l.In, l.Out
	hw, ohw := in.H*in.W, out.H*out.W
	w := out.W
	oy0, oy1 := max(0, l.Pad-i), min(out.H, in.H+l.Pad-i)
	if oy0 >= oy1 {
		if gather {
			clear(row[:n*ohw])
		}
		return
	}
	// row[oy*w+ox] pairs with plane[(oy+i-pad)*w + ox+j-pad] for oy in
	// [oy0,oy1): one shifted run, clipped to the plane at both ends.
	d0, d1 := oy0*w, oy1*w
	off := (oy0+i-l.Pad)*w + j - l.Pad
	if off < 0 {
		d0 -= off
		off = 0
	}
	if end := off + (d1 - d0); end > hw {
		d1 -= end - hw
	}
	for s := 0; s < n; s++ {
		r := row[s*ohw:][:ohw]
		plane := planes[s*hw:][:hw]
		if gather {
			clear(r[:oy0*w])
			clear(r[oy1*w:])
			copy(r[d0:d1], plane[off:])
		}
		for oy := oy0; oy < oy1; oy++ {
			rr := r[oy*w:][:w]
			for q := 0; q < lo; q++ {
				rr[q] = 0
			}
			for q := hi; q < w; q++ {
				rr[q] = 0
			}
		}
		if !gather {
			run := r[d0:d1]
			d := plane[off:][:len(run)]
			for q, v := range run {
				d[q] += v
			}
		}
	}
}

// dwConvMod is a depthwise convolution (groups = channels): each channel
// is filtered by its own k×k kernel; every output sums its taps in (i,j)
// order.
type dwConvMod struct {
	l     *model.Layer
	x     []float32
	y, dx []float32
}

func (m *dwConvMod) reserve(n int) {
	m.y = grow(m.y, n*m.l.Out.Size())
	m.dx = grow(m.dx, n*m.l.In.Size())
}

func (m *dwConvMod) forward(c *runCtx, x []float32) []float32 {
	m.x = x[:c.n*m.l.In.Size()]
	y := m.y[:c.n*m.l.Out.Size()]
	clear(y)
	m.sweep(c.n, m.x, c.p[m.l.Param].Data, y, nil, nil, nil)
	return y
}

func (m *dwConvMod) backward(c *runCtx, dy []float32, needDx bool) []float32 {
	dw := c.grad(m.l.Param, 0)
	clear(dw)
	var dx []float32
	if needDx {
		dx = m.dx[:c.n*m.l.In.Size()]
		clear(dx)
	}
	m.sweep(c.n, m.x, c.p[m.l.Param].Data, nil, dy, dw, dx)
	c.apply(m.l.Param, dw)
	return dx
}

// sweep visits every output row of every plane with every kernel row
// that reads inside the image, in the same order for both passes: with
// dy nil the forward pass adds into y, else the backward pass adds the
// weight gradient into dw and, when dx is not nil, the input gradient.
func (m *dwConvMod) sweep(n int, x, w, y, dy, dw, dx []float32) {
	l := m.l
	in, out := l.In, l.Out
	k, st, pad := l.K, l.Stride, l.Pad
	hw, ohw := in.H*in.W, out.H*out.W
	for ch := 0; ch < in.C; ch++ {
		wc := w[ch*k*k:][:k*k]
		for pl := ch * n; pl < (ch+1)*n; pl++ {
			plane := x[pl*hw:][:hw]
			for oy := 0; oy < out.H; oy++ {
				for i := 0; i < k; i++ {
					iy := oy*st + i - pad
					if iy < 0 || iy >= in.H {
						continue
					}
					src := plane[iy*in.W:][:in.W]
					o := pl*ohw + oy*out.W
					if dy == nil {
						dwRowForward(l, y[o:][:out.W], src, wc[i*k:][:k])
						continue
					}
					var drs []float32
					if dx != nil {
						drs = dx[pl*hw+iy*in.W:][:in.W]
					}
					dwRowBackward(l, dy[o:][:out.W], src, drs, wc[i*k:][:k], dw[(ch*k+i)*k:][:k])
				}
			}
		}
	}
}

// dwRowForward adds to the output row orow the taps of one kernel row w
// over the input row src.
func dwRowForward(l *model.Layer, orow, src, w []float32) {
	st, pad := l.Stride, l.Pad
	for j, wv := range w {
		lo, hi := tapSpan(l, j)
		if st == 1 {
			sr := src[lo+j-pad:][:hi-lo]
			o := orow[lo:hi]
			for q, v := range sr {
				o[q] += wv * v
			}
			continue
		}
		for ox := lo; ox < hi; ox++ {
			orow[ox] += wv * src[ox*st+j-pad]
		}
	}
}

// dwRowBackward adds to dw the gradient of one kernel row w from the
// output gradient row drow over the input row src and, when drs is not
// nil, the input row's gradient through w.
func dwRowBackward(l *model.Layer, drow, src, drs, w, dw []float32) {
	st, pad := l.Stride, l.Pad
	for j, wv := range w {
		lo, hi := tapSpan(l, j)
		var acc float32
		for ox := lo; ox < hi; ox++ {
			acc += drow[ox] * src[ox*st+j-pad]
		}
		dw[j] += acc
		if drs != nil {
			for ox := lo; ox < hi; ox++ {
				drs[ox*st+j-pad] += wv * drow[ox]
			}
		}
	}
}
