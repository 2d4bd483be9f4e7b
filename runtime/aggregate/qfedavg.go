package aggregate

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// qfedavg is q-FedAvg (Li et al., "Fair Resource Allocation in Federated
// Learning", ICLR 2020) as FedScale implements it. With L = 1/lr, for each
// client k:
//
//	g_k = (global − w_k)·L        the update read as a gradient
//	F_k = loss_k + 1e-10
//	Δ_k = F_k^q·g_k
//	h_k = q·F_k^(q−1)·‖g_k‖² + L·F_k^q
//	x   = global − ΣΔ_k / (Σh_k + 1e-10)
//
// Clients with a higher loss get more weight; q = 0 gives global − lr·mean(g_k),
// the unweighted mean of the w_k. Sample counts are validated but not used,
// as in the original.
//
// Everything accumulates in float64. ΣΔ is per element but its divisor needs
// every client's ‖g_k‖², so one pass over the updates stores Σ_k F_k^q·(global
// − w_k) in a float64 buffer and the per-block partial norms; a second,
// cheap pass over that buffer writes x. The norms are reduced in block order,
// so they too are independent of the worker count.
type qfedavg struct {
	q float64

	mu      sync.Mutex
	scratch []float64 // ΣF^q·(global − w), reused across rounds
}

func newQFedAvg(opt Options) (*qfedavg, error) {
	if !(opt.QFedQ >= 0) || math.IsInf(opt.QFedQ, 0) {
		return nil, fmt.Errorf("aggregate: q-fedavg: q %v, want finite >= 0", opt.QFedQ)
	}
	return &qfedavg{q: opt.QFedQ}, nil
}

func (*qfedavg) State() tensor.List { return nil }

func (*qfedavg) Restore(state tensor.List) error { return restoreStateless(PolicyQFedAvg, state) }

func (s *qfedavg) Step(global tensor.List, updates []Update, lr float64) (tensor.List, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out, err := s.step(global, updates, lr)
	if err != nil {
		return nil, fmt.Errorf("aggregate: q-fedavg step: %w", err)
	}
	return out, nil
}

func (s *qfedavg) step(global tensor.List, updates []Update, lr float64) (tensor.List, error) {
	if !(lr > 0) || math.IsInf(lr, 0) {
		return nil, fmt.Errorf("learning rate %v, want finite > 0", lr)
	}
	// Sample counts are validated like every policy's, but not used.
	if _, _, err := checkRound(global, updates); err != nil {
		return nil, err
	}
	L := 1 / lr
	K := len(updates)
	// c_k = F_k^q weighs client k's update in ΣΔ.
	c := make([]float64, K)
	for k, u := range updates {
		if !(u.Loss >= 0) || math.IsInf(u.Loss, 0) {
			// F^q of a negative F is NaN for fractional q.
			return nil, &ClientError{u.ClientID, fmt.Errorf("loss %v, want finite >= 0", u.Loss)}
		}
		c[k] = math.Pow(u.Loss+1e-10, s.q)
		if !finite(c[k]) {
			return nil, &ClientError{u.ClientID, fmt.Errorf("loss %v to the power q=%v overflows", u.Loss, s.q)}
		}
	}

	nBlocks := len(spans(global))
	nElem := global.NumElements()
	if cap(s.scratch) < nElem {
		s.scratch = make([]float64, nElem)
	}
	sum := s.scratch[:nElem]
	// norms[i*K+k] is Σ (global − w_k)² over block i.
	norms := make([]float64, nBlocks*K)
	ok := forEachBlock(global, K, 0, func(i int, b span, _ []float64) bool {
		return qfedBlock(sum[b.off:b.off+b.hi-b.lo], norms[i*K:(i+1)*K], global, updates, c, b)
	})
	if !ok {
		// A block went non-finite: some client sent a NaN or Inf
		// (c_k·NaN and c_k·Inf are never finite), or loss^q was so
		// large that the sums overflowed. The serial scan names the first client in
		// order whatever block the workers reached first.
		if err := firstNonFinite(updates); err != nil {
			return nil, err
		}
		return nil, errors.New("accumulation overflows float64 (loss^q too large)")
	}

	// ‖g_k‖² = L²·Σ(global − w_k)², reduced in block order.
	var h float64
	for k, u := range updates {
		var ss float64
		for i := range nBlocks {
			ss += norms[i*K+k]
		}
		var curv float64 // q·F^(q−1)·‖g_k‖²; exactly 0 for q = 0 even if ‖g_k‖² overflowed
		if s.q != 0 {
			curv = float64(s.q*math.Pow(u.Loss+1e-10, s.q-1)) * float64(L*L*ss)
		}
		h += float64(curv) + float64(L*c[k])
	}
	if !finite(h) {
		return nil, fmt.Errorf("sum of h_k overflows float64 (learning rate %v too small?)", lr)
	}

	den := h + 1e-10
	out := global.ZerosLike()
	ok = forEachBlock(global, 1, 0, func(_ int, b span, _ []float64) bool {
		n := b.hi - b.lo
		g, x := b.of(global, n), b.of(out, n)
		acc := sum[b.off : b.off+n][:n]
		allFinite := true
		for j := range x {
			// ΣΔ = L·Σc_k(global − w_k).
			x[j] = float32(float64(g[j]) - float64(L*acc[j])/den)
			if x[j]*0 != 0 {
				allFinite = false
			}
		}
		return allFinite
	})
	if !ok {
		return nil, errors.New("the step overflows float32")
	}
	return out, nil
}

// qfedBlock sets acc[j] = Σ_k c_k·(global − w_k)[j] over block s and
// norms[k] = Σ_j (global − w_k)[j]², in update order, four updates at a time
// (see weightedSum for why the order and explicit roundings matter). The
// differences of float32 values are exact in float64. It reports whether the
// block's sums are finite.
func qfedBlock(acc, norms []float64, global tensor.List, updates []Update, c []float64, s span) bool {
	clear(acc)
	n := len(acc)
	g := s.of(global, n)
	k := 0
	for ; k+4 <= len(updates); k += 4 {
		a, b, cc, d := s.of(updates[k].Weights, n), s.of(updates[k+1].Weights, n), s.of(updates[k+2].Weights, n), s.of(updates[k+3].Weights, n)
		ca, cb, ccc, cd := c[k], c[k+1], c[k+2], c[k+3]
		var sa, sb, sc, sd float64
		for j := range acc {
			gj := float64(g[j])
			da, db, dc, dd := gj-float64(a[j]), gj-float64(b[j]), gj-float64(cc[j]), gj-float64(d[j])
			acc[j] = acc[j] + float64(ca*da) + float64(cb*db) + float64(ccc*dc) + float64(cd*dd)
			sa += float64(da * da)
			sb += float64(db * db)
			sc += float64(dc * dc)
			sd += float64(dd * dd)
		}
		norms[k], norms[k+1], norms[k+2], norms[k+3] = sa, sb, sc, sd
	}
	for ; k < len(updates); k++ {
		a := s.of(updates[k].Weights, n)
		ca := c[k]
		var sa float64
		for j := range acc {
			da := float64(g[j]) - float64(a[j])
			acc[j] = acc[j] + float64(ca*da)
			sa += float64(da * da)
		}
		norms[k] = sa
	}
	var z float64
	for _, v := range acc {
		z += v * 0
	}
	return z == 0
}
