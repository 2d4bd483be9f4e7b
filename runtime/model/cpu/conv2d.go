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
func im2colBatch(col, x []float32, l *model.Layer, n int) {
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
					im2colSame(row, x[ch*n*hw:][:n*hw], l, n, i, j, lo, hi)
					continue
				}
				for s := 0; s < n; s++ {
					plane := x[(ch*n+s)*hw:][:hw]
					dst := row[s*ohw:][:ohw]
					for oy := 0; oy < out.H; oy++ {
						d := dst[oy*out.W:][:out.W]
						iy := oy*st + i - pad
						if iy < 0 || iy >= in.H {
							for q := range d {
								d[q] = 0
							}
							continue
						}
						// Rows are short (32 to 1 wide): plain loops beat
						// copy's and clear's calls.
						for q := 0; q < lo; q++ {
							d[q] = 0
						}
						if st == 1 {
							copy(d[lo:hi], plane[iy*in.W+lo+j-pad:])
						} else {
							src := plane[iy*in.W:][:in.W]
							for ox := lo; ox < hi; ox++ {
								d[ox] = src[ox*st+j-pad]
							}
						}
						for q := hi; q < len(d); q++ {
							d[q] = 0
						}
					}
				}
			}
		}
	}
}

// im2colSame fills the im2col row of tap (i,j) for the n planes of one
// channel when the convolution keeps the width (stride 1, "same"
// padding): the output rows that read inside the image are then one
// contiguous run of the plane shifted by the tap, copied at once, and only
// the columns that fall in the padding are zeroed after.
func im2colSame(row, planes []float32, l *model.Layer, n, i, j, lo, hi int) {
	in, out := l.In, l.Out
	hw, ohw := in.H*in.W, out.H*out.W
	w := out.W
	oy0, oy1 := max(0, l.Pad-i), min(out.H, in.H+l.Pad-i)
	for s := 0; s < n; s++ {
		dst := row[s*ohw:][:ohw]
		plane := planes[s*hw:][:hw]
		if oy0 >= oy1 {
			clear(dst)
			continue
		}
		clear(dst[:oy0*w])
		clear(dst[oy1*w:])
		// dst[oy*w+ox] = plane[(oy+i-pad)*w + ox+j-pad] for oy in
		// [oy0,oy1): one shifted run, clipped to the plane at both ends.
		d0, d1 := oy0*w, oy1*w
		src := (oy0+i-l.Pad)*w + j - l.Pad
		if src < 0 {
			d0 -= src
			src = 0
		}
		if end := src + (d1 - d0); end > hw {
			d1 -= end - hw
		}
		copy(dst[d0:d1], plane[src:])
		for oy := oy0; oy < oy1; oy++ {
			r := dst[oy*w:][:w]
			for q := 0; q < lo; q++ {
				r[q] = 0
			}
			for q := hi; q < w; q++ {
				r[q] = 0
			}
		}
	}
}

// col2imBatch sets dx to the sum, over every tap, of the column gradients
// that im2colBatch's copies received: the adjoint of im2col.
func col2imBatch(dx, dcol []float32, l *model.Layer, n int) {
	in, out := l.In, l.Out
	k, st, pad := l.K, l.Stride, l.Pad
	hw, ohw := in.H*in.W, out.H*out.W
	cols := n * ohw
	clear(dx[:n*in.Size()])
	for ch := 0; ch < in.C; ch++ {
		for i := 0; i < k; i++ {
			for j := 0; j < k; j++ {
				row := dcol[((ch*k+i)*k+j)*cols:][:cols]
				lo, hi := tapSpan(l, j)
				if st == 1 && out.W == in.W {
					col2imSame(dx[ch*n*hw:][:n*hw], row, l, n, i, j, lo, hi)
					continue
				}
				for s := 0; s < n; s++ {
					plane := dx[(ch*n+s)*hw:][:hw]
					src := row[s*ohw:][:ohw]
					for oy := 0; oy < out.H; oy++ {
						iy := oy*st + i - pad
						if iy < 0 || iy >= in.H {
							continue
						}
						sr := src[oy*out.W:][:out.W]
						if st == 1 {
							d := plane[iy*in.W+lo+j-pad:][:hi-lo]
							for q, v := range sr[lo:hi] {
								d[q] += v
							}
							continue
						}
						d := plane[iy*in.W:][:in.W]
						for ox := lo; ox < hi; ox++ {
							d[ox*st+j-pad] += sr[ox]
						}
					}
				}
			}
		}
	}
}

// col2imSame is col2imBatch's same-size path (see im2colSame): the
// columns that read padding are zeroed in the scratch row (their
// gradient belongs to no input), and the rest is added as one shifted run.
// Adding the zeros leaves every input's sum as the per-row loop makes it.
func col2imSame(planes, row []float32, l *model.Layer, n, i, j, lo, hi int) {
	in, out := l.In, l.Out
	hw, ohw := in.H*in.W, out.H*out.W
	w := out.W
	oy0, oy1 := max(0, l.Pad-i), min(out.H, in.H+l.Pad-i)
	if oy0 >= oy1 {
		return
	}
	for s := 0; s < n; s++ {
		src := row[s*ohw:][:ohw]
		plane := planes[s*hw:][:hw]
		for oy := oy0; oy < oy1; oy++ {
			r := src[oy*w:][:w]
			for q := 0; q < lo; q++ {
				r[q] = 0
			}
			for q := hi; q < w; q++ {
				r[q] = 0
			}
		}
		d0, d1 := oy0*w, oy1*w
		dst := (oy0+i-l.Pad)*w + j - l.Pad
		if dst < 0 {
			d0 -= dst
			dst = 0
		}
		if end := dst + (d1 - d0); end > hw {
			d1 -= end - hw
		}
		run := src[d0:d1]
		d := plane[dst:][:len(run)]
		for q, v := range run {
			d[q] += v
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
	l := m.l
	in, out := l.In, l.Out
	k, st, pad := l.K, l.Stride, l.Pad
	hw, ohw := in.H*in.W, out.H*out.W
	m.x = x[:c.n*in.Size()]
	w := c.p[l.Param].Data
	y := m.y[:c.n*out.Size()]
	clear(y)
	for ch := 0; ch < in.C; ch++ {
		wc := w[ch*k*k : (ch+1)*k*k]
		for s := 0; s < c.n; s++ {
			plane := x[(ch*c.n+s)*hw:][:hw]
			op := y[(ch*c.n+s)*ohw:][:ohw]
			for oy := 0; oy < out.H; oy++ {
				orow := op[oy*out.W:][:out.W]
				for i := 0; i < k; i++ {
					iy := oy*st + i - pad
					if iy < 0 || iy >= in.H {
						continue
					}
					src := plane[iy*in.W:][:in.W]
					for j := 0; j < k; j++ {
						lo, hi := tapSpan(l, j)
						wv := wc[i*k+j]
						if st == 1 {
							sr := src[lo+j-pad:][:hi-lo]
							o := orow[lo:hi]
							for q, v := range sr {
								o[q] += wv * v
							}
						} else {
							for ox := lo; ox < hi; ox++ {
								orow[ox] += wv * src[ox*st+j-pad]
							}
						}
					}
				}
			}
		}
	}
	return y
}

func (m *dwConvMod) backward(c *runCtx, dy []float32, needDx bool) []float32 {
	l := m.l
	in, out := l.In, l.Out
	k, st, pad := l.K, l.Stride, l.Pad
	hw, ohw := in.H*in.W, out.H*out.W
	w := c.p[l.Param].Data
	dw := c.grad(l.Param, 0)
	clear(dw)
	var dx []float32
	if needDx {
		dx = m.dx[:c.n*in.Size()]
		clear(dx)
	}
	for ch := 0; ch < in.C; ch++ {
		wc, dwc := w[ch*k*k:(ch+1)*k*k], dw[ch*k*k:(ch+1)*k*k]
		for s := 0; s < c.n; s++ {
			plane := m.x[(ch*c.n+s)*hw:][:hw]
			dp := dy[(ch*c.n+s)*ohw:][:ohw]
			var dplane []float32
			if needDx {
				dplane = dx[(ch*c.n+s)*hw:][:hw]
			}
			for oy := 0; oy < out.H; oy++ {
				drow := dp[oy*out.W:][:out.W]
				for i := 0; i < k; i++ {
					iy := oy*st + i - pad
					if iy < 0 || iy >= in.H {
						continue
					}
					src := plane[iy*in.W:][:in.W]
					for j := 0; j < k; j++ {
						lo, hi := tapSpan(l, j)
						var acc float32
						for ox := lo; ox < hi; ox++ {
							acc += drow[ox] * src[ox*st+j-pad]
						}
						dwc[i*k+j] += acc
						if needDx {
							wv := wc[i*k+j]
							drs := dplane[iy*in.W:][:in.W]
							for ox := lo; ox < hi; ox++ {
								drs[ox*st+j-pad] += wv * drow[ox]
							}
						}
					}
				}
			}
		}
	}
	c.apply(l.Param, dw)
	return dx
}
