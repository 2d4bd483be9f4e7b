package cpu

import (
	"math"

	"github.com/fedscale/fedscale-go/runtime/model"
)

// xent returns the cross-entropy of one sample's logits z against label y,
// computed in float64 after subtracting the largest logit so exp cannot
// overflow. When ex is not nil it receives exp(z_j - max) and the sum of
// those is returned too, for the gradient.
func xent(z []float32, y int, ex []float64) (loss, sum float64) {
	m := z[0]
	for _, v := range z[1:] {
		if v > m {
			m = v
		}
	}
	mf := float64(m)
	for j, v := range z {
		e := math.Exp(float64(v) - mf)
		if ex != nil {
			ex[j] = e
		}
		sum += e
	}
	return math.Log(sum) - (float64(z[y]) - mf), sum
}

// xentGrad writes into dz the gradient of the batch-mean cross-entropy
// with respect to the logits, softmax - onehot over n, and returns the
// summed per-sample loss.
func xentGrad(logits []float32, y []int32, classes int, dz []float32, ex []float64) float64 {
	n := len(y)
	inv := 1 / float64(n)
	ex = ex[:classes]
	var total float64
	for i, lbl := range y {
		z := logits[i*classes : (i+1)*classes]
		d := dz[i*classes : (i+1)*classes]
		loss, sum := xent(z, int(lbl), ex)
		total += loss
		for j, e := range ex {
			p := e / sum
			if j == int(lbl) {
				p--
			}
			d[j] = float32(p * inv)
		}
	}
	return total
}

// score adds the loss and top-1/top-k hits of a batch of logits to st,
// with the tie rule documented on model.EvalStats.
func score(st *model.EvalStats, logits []float32, y []int32, classes, k int) {
	for i, lbl := range y {
		z := logits[i*classes : (i+1)*classes]
		loss, _ := xent(z, int(lbl), nil)
		st.LossSum += loss
		st.Count++
		zy := z[lbl]
		if zy != zy { // NaN ranks nowhere
			continue
		}
		rank := 0
		for j, v := range z {
			if v > zy || (v == zy && j < int(lbl)) {
				rank++
			}
		}
		if rank < 1 {
			st.Top1++
		}
		if rank < k {
			st.Top5++
		}
	}
}
