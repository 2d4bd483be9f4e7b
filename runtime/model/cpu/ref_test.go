package cpu

import (
	"math"

	"github.com/fedscale/fedscale-go/runtime/model"
	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// A deliberately naive float64 implementation of the sequential models'
// layers, written from the definitions rather than from the fast code and
// on PyTorch's sample-major NCHW layout rather than the engine's
// channel-major one, used as the oracle for forward values and for
// finite-difference gradients.

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

// refAct applies a fused activation.
func refAct(a model.Act, v float64) float64 {
	if a == model.ActReLU {
		return math.Max(v, 0)
	}
	return v
}

// refLayer runs one layer (or a Seq of them) on n NCHW samples.
func refLayer(l *model.Layer, p [][]float64, x []float64, n int) []float64 {
	in, out := l.In, l.Out
	switch l.Kind {
	case model.Seq:
		for _, c := range l.Children {
			x = refLayer(c, p, x, n)
		}
		return x
	case model.Linear:
		w, b := p[l.Param], p[l.Param+1]
		f := in.Size()
		y := make([]float64, n*out.C)
		for s := 0; s < n; s++ {
			for o := 0; o < out.C; o++ {
				v := b[o]
				for i := 0; i < f; i++ {
					v += w[o*f+i] * x[s*f+i]
				}
				y[s*out.C+o] = refAct(l.Act, v)
			}
		}
		return y
	case model.Conv:
		w := p[l.Param]
		y := make([]float64, n*out.Size())
		for s := 0; s < n; s++ {
			for o := 0; o < out.C; o++ {
				for oy := 0; oy < out.H; oy++ {
					for ox := 0; ox < out.W; ox++ {
						var v float64
						if l.Bias {
							v = p[l.Param+1][o]
						}
						for c := 0; c < in.C; c++ {
							for i := 0; i < l.K; i++ {
								for j := 0; j < l.K; j++ {
									iy, ix := oy*l.Stride+i-l.Pad, ox*l.Stride+j-l.Pad
									if iy < 0 || iy >= in.H || ix < 0 || ix >= in.W {
										continue
									}
									v += w[((o*in.C+c)*l.K+i)*l.K+j] * x[((s*in.C+c)*in.H+iy)*in.W+ix]
								}
							}
						}
						y[((s*out.C+o)*out.H+oy)*out.W+ox] = refAct(l.Act, v)
					}
				}
			}
		}
		return y
	case model.MaxPool:
		y := make([]float64, n*out.Size())
		for pl := 0; pl < n*in.C; pl++ {
			for oy := 0; oy < out.H; oy++ {
				for ox := 0; ox < out.W; ox++ {
					v := math.Inf(-1)
					for i := 0; i < l.K; i++ {
						for j := 0; j < l.K; j++ {
							iy, ix := oy*l.Stride+i-l.Pad, ox*l.Stride+j-l.Pad
							if iy >= 0 && iy < in.H && ix >= 0 && ix < in.W {
								v = math.Max(v, x[(pl*in.H+iy)*in.W+ix])
							}
						}
					}
					y[(pl*out.H+oy)*out.W+ox] = v
				}
			}
		}
		return y
	}
	panic("refLayer: unsupported layer kind")
}

// refLoss returns the batch-mean cross-entropy of the network on x, y.
func refLoss(root *model.Layer, p [][]float64, x []float64, y []int32, classes int) float64 {
	n := len(y)
	x = refLayer(root, p, x, n)
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
