package cpu

import (
	"math"

	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// A deliberately naive float64 implementation of the same layers, written
// from the definitions rather than from the fast code, used as the oracle
// for forward values and for finite-difference gradients.

func to64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

func params64(p tensor.List) [][]float64 {
	out := make([][]float64, len(p))
	for i, t := range p {
		out[i] = to64(t.Data)
	}
	return out
}

// refLayer runs one layer on n samples.
func refLayer(l layer, p [][]float64, x []float64, n int) []float64 {
	switch l := l.(type) {
	case *dense:
		w, b := p[l.w], p[l.w+1]
		y := make([]float64, n*l.out)
		for s := 0; s < n; s++ {
			for o := 0; o < l.out; o++ {
				v := b[o]
				for i := 0; i < l.in; i++ {
					v += w[o*l.in+i] * x[s*l.in+i]
				}
				if l.relu {
					v = math.Max(v, 0)
				}
				y[s*l.out+o] = v
			}
		}
		return y
	case *conv:
		w, b := p[l.wi], p[l.wi+1]
		y := make([]float64, n*l.outLen)
		for s := 0; s < n; s++ {
			for o := 0; o < l.oc; o++ {
				for oy := 0; oy < l.oh; oy++ {
					for ox := 0; ox < l.ow; ox++ {
						v := b[o]
						for c := 0; c < l.c; c++ {
							for i := 0; i < l.k; i++ {
								for j := 0; j < l.k; j++ {
									iy, ix := oy+i-l.pad, ox+j-l.pad
									if iy < 0 || iy >= l.h || ix < 0 || ix >= l.w {
										continue
									}
									v += w[((o*l.c+c)*l.k+i)*l.k+j] * x[s*l.inLen+(c*l.h+iy)*l.w+ix]
								}
							}
						}
						if l.relu {
							v = math.Max(v, 0)
						}
						y[s*l.outLen+(o*l.oh+oy)*l.ow+ox] = v
					}
				}
			}
		}
		return y
	case *maxPool:
		y := make([]float64, n*l.outSize())
		for pl := 0; pl < n*l.c; pl++ {
			for oy := 0; oy < l.oh; oy++ {
				for ox := 0; ox < l.ow; ox++ {
					v := math.Inf(-1)
					for _, d := range [4][2]int{{0, 0}, {0, 1}, {1, 0}, {1, 1}} {
						v = math.Max(v, x[pl*l.h*l.w+(2*oy+d[0])*l.w+2*ox+d[1]])
					}
					y[pl*l.oh*l.ow+oy*l.ow+ox] = v
				}
			}
		}
		return y
	}
	panic("unknown layer")
}

// refLoss returns the batch-mean cross-entropy of the network on x, y.
func refLoss(layers []layer, p [][]float64, x []float64, y []int32, classes int) float64 {
	n := len(y)
	for _, l := range layers {
		x = refLayer(l, p, x, n)
	}
	var total float64
	for s := 0; s < n; s++ {
		z := x[s*classes : (s+1)*classes]
		m := math.Inf(-1)
		for _, v := range z {
			m = math.Max(m, v)
		}
		var sum float64
		for _, v := range z {
			sum += math.Exp(v - m)
		}
		total += math.Log(sum) + m - z[y[s]]
	}
	return total / float64(n)
}
