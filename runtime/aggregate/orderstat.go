package aggregate

import (
	"errors"
	"fmt"
	"slices"

	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// orderStat is FedMedian and FedTrimmedAvg, the coordinate-wise median and
// trimmed mean of Yin et al. ("Byzantine-Robust Distributed Learning:
// Towards Optimal Statistical Rates", ICML 2018) as Flower's strategies of
// those names compute them: per element, the n updates' values are sorted,
// cut(n) values are dropped from each end and the rest are averaged. The
// median is the largest cut, (n−1)/2: the middle value, or the mean of the
// two middle ones for even n (numpy's median). A client holding one
// extreme value per element moves the result by at most one rank.
//
// Sample counts are validated but not used, as in Flower: a client cannot
// buy weight by claiming samples. The result depends only on the multiset
// of values at each element (sums run in sorted order from +0), so it is
// the same for any update order and any worker count.
type orderStat struct {
	cut func(n int) int // values dropped from each end, for n updates
}

func medianServer() Server {
	return stateless{PolicyFedMedian, orderStat{cut: func(n int) int { return (n - 1) / 2 }}.step}
}

func newTrimmedAvg(beta float64) (Server, error) {
	if !(beta >= 0 && beta < 0.5) {
		return nil, fmt.Errorf("aggregate: %s: trim_fraction %v, want in [0, 0.5)", PolicyFedTrimmedAvg, beta)
	}
	// scipy.stats.trim_mean's cut, int(proportiontocut·n), which Flower's
	// FedTrimmedAvg uses: 0.1 of 10 updates drops the lowest and the
	// highest value, 0.1 of 9 drops none.
	return stateless{PolicyFedTrimmedAvg, orderStat{cut: func(n int) int { return int(beta * float64(n)) }}.step}, nil
}

func (o orderStat) step(global tensor.List, updates []Update) (tensor.List, error) {
	if _, _, err := checkRound(global, updates); err != nil {
		return nil, err
	}
	n := len(updates)
	cut := o.cut(n)
	if cut < 0 || cut >= n-cut {
		// trim_fraction < 0.5 rules it out; a rounding of β·n must not
		// average an empty set.
		return nil, fmt.Errorf("cutting %d of %d values from each end leaves none", cut, n)
	}
	kept := float64(n - 2*cut)
	out := global.ZerosLike()
	ok := forEachBlock(global, n, n, func(_ int, s span, vals []float64) bool {
		m := s.hi - s.lo
		cols := make([][]float32, n)
		for k, u := range updates {
			cols[k] = s.of(u.Weights, m)
		}
		x := s.of(out, m)
		for j := range x {
			for k, c := range cols {
				v := float64(c[j])
				if v-v != 0 { // NaN or ±Inf: the slow path names the client
					return false
				}
				vals[k] = v
			}
			sortValues(vals)
			var sum float64
			for _, v := range vals[cut : n-cut] {
				sum += v
			}
			x[j] = float32(sum / kept)
		}
		return true
	})
	if !ok {
		if err := firstNonFinite(updates); err != nil {
			return nil, err
		}
		return nil, errors.New("internal error: a finite block was reported non-finite")
	}
	return out, nil
}

// sortValues sorts v ascending. Rounds have few updates, and below 32
// values an insertion sort took a half to a third of slices.Sort's time
// (measured for 5 to 50 random values).
func sortValues(v []float64) {
	if len(v) > 32 {
		slices.Sort(v)
		return
	}
	for i := 1; i < len(v); i++ {
		x := v[i]
		j := i
		for ; j > 0 && v[j-1] > x; j-- {
			v[j] = v[j-1]
		}
		v[j] = x
	}
}
