package cpu

import (
	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// layer is one stage of a sequential network working on a batch of n
// samples stored back to back. ReLU is fused into the layer before it: a
// layer with relu set stores post-activation outputs and masks its output
// gradient with them.
type layer interface {
	// outSize is the number of values per sample the layer produces.
	outSize() int
	// shapes lists the layer's parameter shapes in order (weight, bias).
	shapes() [][]int
	// forward computes y from x.
	forward(p tensor.List, x, y []float32, n int, s *scratch)
	// backward overwrites the layer's parameter gradients in g and, when
	// dx is not nil, the input gradient. It may modify dy.
	backward(p tensor.List, g [][]float32, x, y, dy, dx []float32, n int, s *scratch)
}

// scratch is memory shared by every layer of one trainer.
type scratch struct {
	nz nzScratch
}

// dense is a fully connected layer: y = x·Wᵀ + b, W stored [out,in].
type dense struct {
	in, out int
	relu    bool
	w       int // index of the weight in the parameter list; the bias follows
}

func (l *dense) outSize() int    { return l.out }
func (l *dense) shapes() [][]int { return [][]int{{l.out, l.in}, {l.out}} }

func (l *dense) forward(p tensor.List, x, y []float32, n int, _ *scratch) {
	y = y[:n*l.out]
	gemmNTBias(y, x, p[l.w].Data, p[l.w+1].Data, n, l.out, l.in)
	if l.relu {
		reluInPlace(y)
	}
}

func (l *dense) backward(p tensor.List, g [][]float32, x, y, dy, dx []float32, n int, s *scratch) {
	dy = dy[:n*l.out]
	if l.relu {
		reluMask(dy, y)
	}
	// dW[o,:] = Σ_i dy[i,o]·x[i,:]: A is dyᵀ, read with strides.
	gemmNN(g[l.w], l.in, dy, 1, l.out, x, l.in, l.out, l.in, n, &s.nz)
	db := g[l.w+1][:l.out]
	clear(db)
	for i := 0; i < n; i++ {
		for o, d := range dy[i*l.out : (i+1)*l.out] {
			db[o] += d
		}
	}
	if dx != nil {
		// dx[i,:] = Σ_o dy[i,o]·W[o,:]
		gemmNN(dx, l.in, dy, l.out, 1, p[l.w].Data, l.in, n, l.in, l.out, &s.nz)
	}
}

// conv is a stride-1 2-D convolution with square kernel k and zero padding
// pad, computed per sample as W[oc, c·k·k] × im2col(x).
type conv struct {
	c, h, w   int // input
	oc, k     int
	pad       int
	oh, ow    int // output
	relu      bool
	wi        int       // weight index; the bias follows
	col       []float32 // im2col of one sample: (c·k·k) × (oh·ow)
	xpad      []float32 // one zero-padded input sample (when pad > 0)
	dxpad     []float32 // its gradient
	nzOff     []int32   // nonzeros of one output-gradient row: padded-input offsets
	nzVal     []float32 // and values
	kk, inLen int       // c·k·k, c·h·w
	outLen    int       // oc·oh·ow
}

func newConv(c, h, w, oc, k, pad int, relu bool, wi int) *conv {
	l := &conv{c: c, h: h, w: w, oc: oc, k: k, pad: pad, relu: relu, wi: wi}
	l.oh, l.ow = h+2*pad-k+1, w+2*pad-k+1
	l.kk, l.inLen, l.outLen = c*k*k, c*h*w, oc*l.oh*l.ow
	l.col = make([]float32, l.kk*l.oh*l.ow)
	l.nzOff = make([]int32, l.oh*l.ow)
	l.nzVal = make([]float32, l.oh*l.ow)
	if pad > 0 {
		l.xpad = make([]float32, c*(h+2*pad)*(w+2*pad))
		l.dxpad = make([]float32, len(l.xpad))
	}
	return l
}

func (l *conv) outSize() int    { return l.outLen }
func (l *conv) shapes() [][]int { return [][]int{{l.oc, l.c, l.k, l.k}, {l.oc}} }

func (l *conv) forward(p tensor.List, x, y []float32, n int, _ *scratch) {
	wt, bias := p[l.wi].Data, p[l.wi+1].Data
	np := l.oh * l.ow
	for i := 0; i < n; i++ {
		im2col(l.col, x[i*l.inLen:(i+1)*l.inLen], l.c, l.h, l.w, l.k, l.k, l.pad, l.oh, l.ow)
		out := y[i*l.outLen : (i+1)*l.outLen]
		for o := 0; o < l.oc; o++ {
			row := out[o*np : (o+1)*np]
			for j := range row {
				row[j] = bias[o]
			}
		}
		gemmAcc(out, wt, l.col, l.oc, np, l.kk)
		if l.relu {
			reluInPlace(out)
		}
	}
}

// backward works on the nonzero output gradients only: behind max pooling
// at most a quarter of them are nonzero. It reads the input through a
// zero-padded copy instead of im2col, so output position (oy,ox) and tap
// (c,i,j) meet at offset base(c,i,j) + off(oy,ox) and both gradients are
// one sparse pass per tap:
//
//	dW[o,tap] += Σ_t dy_t · xp[base+off_t]     dxp[base+off_t] += W[o,tap] · dy_t
func (l *conv) backward(p tensor.List, g [][]float32, x, y, dy, dx []float32, n int, _ *scratch) {
	dy = dy[:n*l.outLen]
	if l.relu {
		reluMask(dy, y)
	}
	wt := p[l.wi].Data[:l.oc*l.kk]
	dw, db := g[l.wi][:l.oc*l.kk], g[l.wi+1][:l.oc]
	clear(dw)
	clear(db)
	if dx != nil {
		clear(dx[:n*l.inLen])
	}
	np := l.oh * l.ow
	hp, wp := l.h+2*l.pad, l.w+2*l.pad
	for i := 0; i < n; i++ {
		xs := x[i*l.inLen : (i+1)*l.inLen]
		var dxs []float32
		if dx != nil {
			dxs = dx[i*l.inLen : (i+1)*l.inLen]
		}
		xp, dxp := xs, dxs
		if l.pad > 0 {
			xp = l.xpad
			padInto(xp, xs, l.c, l.h, l.w, l.pad)
			if dx != nil {
				dxp = l.dxpad
				clear(dxp)
			}
		}
		dys := dy[i*l.outLen : (i+1)*l.outLen]
		for o := 0; o < l.oc; o++ {
			nz := 0
			var bsum float32
			for q, d := range dys[o*np : (o+1)*np] {
				if d != 0 {
					l.nzOff[nz], l.nzVal[nz] = int32(q/l.ow*wp+q%l.ow), d
					nz++
					bsum += d
				}
			}
			if nz == 0 {
				continue
			}
			db[o] += bsum
			off, val := l.nzOff[:nz], l.nzVal[:nz]
			dwo, wo := dw[o*l.kk:(o+1)*l.kk], wt[o*l.kk:(o+1)*l.kk]
			r := 0
			for c := 0; c < l.c; c++ {
				for ki := 0; ki < l.k; ki++ {
					for kj := 0; kj < l.k; kj++ {
						base := (c*hp+ki)*wp + kj
						if dxp != nil {
							dwo[r] += tapBoth(xp[base:], dxp[base:], off, val, wo[r])
						} else {
							dwo[r] += tapDot(xp[base:], off, val)
						}
						r++
					}
				}
			}
		}
		if l.pad > 0 && dx != nil {
			cropInto(dxs, dxp, l.c, l.h, l.w, l.pad)
		}
	}
}

// tapDot returns Σ_t val[t]·x[off[t]]: one tap's weight gradient.
// It and tapBoth are kept out of line: as leaf functions their loops keep
// every slice in registers, which inlined into backward they do not.
//
//go:noinline
func tapDot(x []float32, off []int32, val []float32) float32 {
	var sum float32
	val = val[:len(off)]
	for t, q := range off {
		sum += val[t] * x[q]
	}
	return sum
}

// tapBoth is tapDot that also adds w·val[t] to dx[off[t]]: the input
// gradient through the same tap.
//
//go:noinline
func tapBoth(x, dx []float32, off []int32, val []float32, w float32) float32 {
	// Two accumulators halve the chain of dependent additions.
	var s0, s1 float32
	val = val[:len(off)]
	t := 0
	for ; t+2 <= len(off); t += 2 {
		q0, q1 := off[t], off[t+1]
		v0, v1 := val[t], val[t+1]
		s0 += v0 * x[q0]
		s1 += v1 * x[q1]
		dx[q0] += w * v0
		dx[q1] += w * v1
	}
	if t < len(off) {
		v := val[t]
		s0 += v * x[off[t]]
		dx[off[t]] += w * v
	}
	return s0 + s1
}

// padInto copies the c×h×w image src into dst with a zero border of pad.
func padInto(dst, src []float32, c, h, w, pad int) {
	wp := w + 2*pad
	clear(dst)
	for ch := 0; ch < c; ch++ {
		for y := 0; y < h; y++ {
			copy(dst[(ch*(h+2*pad)+y+pad)*wp+pad:], src[(ch*h+y)*w:(ch*h+y+1)*w])
		}
	}
}

// cropInto copies the interior of the padded image src into dst.
func cropInto(dst, src []float32, c, h, w, pad int) {
	wp := w + 2*pad
	for ch := 0; ch < c; ch++ {
		for y := 0; y < h; y++ {
			copy(dst[(ch*h+y)*w:(ch*h+y+1)*w], src[(ch*(h+2*pad)+y+pad)*wp+pad:])
		}
	}
}

// maxPool is 2×2 max pooling with stride 2; odd trailing rows and columns
// are dropped (floor), as in PyTorch.
type maxPool struct {
	c, h, w int // input
	oh, ow  int
}

func newMaxPool(c, h, w int) *maxPool { return &maxPool{c: c, h: h, w: w, oh: h / 2, ow: w / 2} }

func (l *maxPool) outSize() int    { return l.c * l.oh * l.ow }
func (l *maxPool) shapes() [][]int { return nil }

// argmax returns the offset in the plane of the window's largest value;
// the first of equal values wins, in forward and backward alike.
func (l *maxPool) argmax(plane []float32, oy, ox int) int {
	a := 2*oy*l.w + 2*ox
	b := a + l.w
	q := plane[a : a+2]
	r := plane[b : b+2]
	best, v := a, q[0]
	if q[1] > v {
		best, v = a+1, q[1]
	}
	if r[0] > v {
		best, v = b, r[0]
	}
	if r[1] > v {
		best = b + 1
	}
	return best
}

func (l *maxPool) forward(_ tensor.List, x, y []float32, n int, _ *scratch) {
	hw, ohw := l.h*l.w, l.oh*l.ow
	for pl := 0; pl < n*l.c; pl++ {
		plane := x[pl*hw : (pl+1)*hw]
		out := y[pl*ohw : (pl+1)*ohw]
		for oy := 0; oy < l.oh; oy++ {
			for ox := 0; ox < l.ow; ox++ {
				out[oy*l.ow+ox] = plane[l.argmax(plane, oy, ox)]
			}
		}
	}
}

func (l *maxPool) backward(_ tensor.List, _ [][]float32, x, _, dy, dx []float32, n int, _ *scratch) {
	if dx == nil {
		return
	}
	hw, ohw := l.h*l.w, l.oh*l.ow
	for pl := 0; pl < n*l.c; pl++ {
		plane := x[pl*hw : (pl+1)*hw]
		d := dy[pl*ohw : (pl+1)*ohw]
		dp := dx[pl*hw : (pl+1)*hw]
		clear(dp)
		for oy := 0; oy < l.oh; oy++ {
			for ox := 0; ox < l.ow; ox++ {
				dp[l.argmax(plane, oy, ox)] = d[oy*l.ow+ox]
			}
		}
	}
}
