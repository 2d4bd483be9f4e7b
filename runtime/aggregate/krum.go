package aggregate

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// MaxKrumUpdates bounds a Krum round: its pairwise distances take
// n(n−1)/2 float64s (67 MB at this bound) and n²·(model size) work.
const MaxKrumUpdates = 4096

// krum is Krum and Multi-Krum (Blanchard et al., "Machine Learning with
// Adversaries: Byzantine Tolerant Gradient Descent", NeurIPS 2017) on the
// clients' models, as Flower's Krum strategy applies them: update i is
// scored by the sum of its squared L2 distances to its n−f−2 nearest other
// updates; Krum keeps the one update with the lowest score, Multi-Krum the m
// lowest, combined by their sample-weighted mean (FedAvg, as Flower's
// aggregate; the paper's workers all have the same batch size). Equal
// scores go to the earlier update in the caller's order (client id order).
//
// The paper's guarantee needs n > 2f+2 updates; a round with fewer is an
// error rather than an aggregate without the guarantee. Distances are
// reduced in a fixed block order (reduceBlocks) and each score sums its
// distances in ascending order, so the choice is the same for any worker
// count.
type krum struct {
	f int // malicious clients tolerated
	m int // updates kept; 0 means n−f
}

func newKrum(opt Options) (Server, error) {
	if opt.KrumMalicious < 0 {
		return nil, fmt.Errorf("aggregate: %s: num_malicious_clients %d, want >= 0", opt.Policy, opt.KrumMalicious)
	}
	k := krum{f: opt.KrumMalicious, m: 1}
	if opt.Policy == PolicyMultiKrum {
		if opt.KrumKeep < 0 {
			return nil, fmt.Errorf("aggregate: %s: num_clients_to_keep %d, want >= 0 (0 = the updates less num_malicious_clients)", opt.Policy, opt.KrumKeep)
		}
		k.m = opt.KrumKeep
	}
	return stateless{opt.Policy, k.step}, nil
}

func (k krum) step(global tensor.List, updates []Update) (tensor.List, error) {
	weights, _, err := checkRound(global, updates)
	if err != nil {
		return nil, err
	}
	n := len(updates)
	switch {
	case n > MaxKrumUpdates:
		return nil, fmt.Errorf("%d updates, at most %d (pairwise distances grow as n²)", n, MaxKrumUpdates)
	case n < 3 || k.f > (n-3)/2: // n > 2f+2, without computing 2f+2
		return nil, fmt.Errorf("%d updates, but num_malicious_clients %d needs more than 2·%d+2", n, k.f, k.f)
	}
	m := k.m
	if m == 0 {
		m = n - k.f
	}
	if m > n-k.f {
		return nil, fmt.Errorf("num_clients_to_keep %d is more than the round's %d updates less num_malicious_clients %d (an attacker's update would always be kept)", m, n, k.f)
	}
	scores, err := krumScores(global, updates, k.f)
	if err != nil {
		return nil, err
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(scores[a], scores[b]) })
	keep := order[:m]
	slices.Sort(keep) // average in the caller's order
	chosen := make([]Update, m)
	w := make([]float64, m)
	var total float64
	for i, j := range keep {
		chosen[i], w[i] = updates[j], weights[j]
		total += w[i]
	}
	out := global.ZerosLike()
	if err := weightedMean(out, chosen, w, total); err != nil {
		return nil, err
	}
	return out, nil
}

// krumScores returns each update's Krum score: the sum, in ascending order,
// of its n−f−2 smallest squared distances to the other updates.
func krumScores(global tensor.List, updates []Update, f int) ([]float64, error) {
	n := len(updates)
	// d[pair(i, j)] for i < j, pairs in row order.
	pair := func(i, j int) int { return i*n - i*(i+1)/2 + j - i - 1 }
	d := reduceBlocks(global, n*n/2, n*(n-1)/2, func(s span, part []float64) {
		m := s.hi - s.lo
		p := 0
		for i := range n {
			a := s.of(updates[i].Weights, m)
			for j := i + 1; j < n; j++ {
				part[p] += sqDist(a, s.of(updates[j].Weights, m))
				p++
			}
		}
	})
	for _, v := range d {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			// Finite float32 values cannot overflow a float64 sum of
			// squares: some update holds a NaN or Inf.
			if err := firstNonFinite(updates); err != nil {
				return nil, err
			}
			return nil, errors.New("internal error: finite updates gave a non-finite distance")
		}
	}
	scores := make([]float64, n)
	near := make([]float64, 0, n-1)
	for i := range n {
		near = near[:0]
		for j := range n {
			switch {
			case j < i:
				near = append(near, d[pair(j, i)])
			case j > i:
				near = append(near, d[pair(i, j)])
			}
		}
		slices.Sort(near)
		for _, v := range near[:n-f-2] {
			scores[i] += v
		}
	}
	return scores, nil
}
