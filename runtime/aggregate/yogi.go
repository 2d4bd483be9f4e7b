package aggregate

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// State tensor names: the first moment of model tensor "x" is saved as
// "fed-yogi/m/x" and the second as "fed-yogi/v/x", all m's before all v's.
const (
	yogiMPrefix = "fed-yogi/m/"
	yogiVPrefix = "fed-yogi/v/"
)

// yogi is FedYogi (Reddi et al., "Adaptive Federated Optimization", ICLR
// 2021) as FedScale implements it, applied to the pseudo-gradient
// Δ = WeightedMean(updates) − global:
//
//	m = β1·m + (1−β1)·Δ
//	v = v − (1−β2)·Δ²·sign(v − Δ²)
//	x = global + η·m/(√v + τ)
//
// m starts at 0 and v at τ², the paper's choice (it requires v₋₁ ≥ τ²).
// FedScale's versions differ here (recent ones start v at τ, older ones seed
// m and v from the first Δ); τ² keeps the first step's scale η·Δ/(|Δ|+τ)
// close to η·sign(Δ) for any |Δ| ≫ τ. m and v are kept in float32, like
// the model, and each step computes in float64.
type yogi struct {
	eta, tau, beta1, beta2 float64

	mu   sync.Mutex
	m, v tensor.List // nil until the first Step or a Restore
	// spare buffers for the next m and v: a step writes them and swaps
	// them in only on success, so a failed step leaves the state intact.
	spareM, spareV tensor.List
}

func newYogi(opt Options) (*yogi, error) {
	switch {
	case !(opt.YogiEta > 0) || math.IsInf(opt.YogiEta, 0):
		return nil, fmt.Errorf("aggregate: fed-yogi: eta %v, want finite > 0", opt.YogiEta)
	case !(opt.YogiTau > 0) || math.IsInf(opt.YogiTau, 0):
		// τ = 0 would divide 0 by 0 wherever m and v are still zero.
		return nil, fmt.Errorf("aggregate: fed-yogi: tau %v, want finite > 0", opt.YogiTau)
	case !(opt.YogiBeta >= 0 && opt.YogiBeta < 1):
		return nil, fmt.Errorf("aggregate: fed-yogi: beta %v, want in [0, 1)", opt.YogiBeta)
	case !(opt.YogiBeta2 >= 0 && opt.YogiBeta2 < 1):
		return nil, fmt.Errorf("aggregate: fed-yogi: beta2 %v, want in [0, 1)", opt.YogiBeta2)
	}
	return &yogi{eta: opt.YogiEta, tau: opt.YogiTau, beta1: opt.YogiBeta, beta2: opt.YogiBeta2}, nil
}

func (y *yogi) Step(global tensor.List, updates []Update, _ float64) (tensor.List, error) {
	y.mu.Lock()
	defer y.mu.Unlock()
	out, err := y.step(global, updates)
	if err != nil {
		return nil, fmt.Errorf("aggregate: fed-yogi step: %w", err)
	}
	return out, nil
}

func (y *yogi) step(global tensor.List, updates []Update) (tensor.List, error) {
	weights, total, err := checkRound(global, updates)
	if err != nil {
		return nil, err
	}
	// Work on locals so that a failed step, even the first, leaves the
	// state as it was.
	mOld, vOld := y.m, y.v
	if mOld == nil {
		mOld, vOld = global.ZerosLike(), global.ZerosLike()
		tau2 := float32(y.tau * y.tau)
		for _, t := range vOld {
			for j := range t.Data {
				t.Data[j] = tau2
			}
		}
	} else if err := global.CheckCompatible(mOld); err != nil {
		// A changed model must not inherit another model's moments.
		return nil, fmt.Errorf("optimizer state does not match the global model: %w", err)
	}
	if global.CheckCompatible(y.spareM) != nil {
		y.spareM, y.spareV = global.ZerosLike(), global.ZerosLike()
	}
	out := global.ZerosLike()

	b1, c1, c2, eta, tau := y.beta1, 1-y.beta1, 1-y.beta2, y.eta, y.tau
	ok := forEachBlock(global, len(updates), blockLen, func(_ int, s span, acc []float64) bool {
		acc = acc[:s.hi-s.lo]
		weightedSum(acc, updates, weights, s)
		n := len(acc)
		g, m, v := s.of(global, n), s.of(mOld, n), s.of(vOld, n)
		m2, v2, x := s.of(y.spareM, n), s.of(y.spareV, n), s.of(out, n)
		allFinite := true
		for j, sum := range acc {
			gj := float64(g[j])
			d := sum/total - gj // the unrounded mean, minus global
			mj := float64(b1*float64(m[j])) + float64(c1*d)
			d2 := d * d
			vj := float64(v[j])
			vj -= float64(float64(c2*d2) * sign(vj-d2))
			xj := gj + float64(eta*mj)/(math.Sqrt(vj)+tau)
			m2[j], v2[j], x[j] = float32(mj), float32(vj), float32(xj)
			// NaN/Inf from a bad input, or float32 overflow of the
			// state or the result; the slow path tells them apart.
			// f*0 is ±0 for finite f and NaN otherwise.
			if x[j]*0+m2[j]*0+v2[j]*0 != 0 {
				allFinite = false
			}
		}
		return allFinite
	})
	if !ok {
		if err := firstNonFinite(updates); err != nil {
			return nil, err
		}
		return nil, errors.New("the step overflows float32 (model or optimizer state)")
	}
	y.m, y.v, y.spareM, y.spareV = y.spareM, y.spareV, mOld, vOld
	return out, nil
}

// sign is torch.sign: -1, 0 or 1.
func sign(x float64) float64 {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return 0
}

func (y *yogi) State() tensor.List {
	y.mu.Lock()
	defer y.mu.Unlock()
	if y.m == nil {
		return nil
	}
	out := make(tensor.List, 0, 2*len(y.m))
	for _, t := range y.m {
		c := t.Clone()
		c.Name = yogiMPrefix + t.Name
		out = append(out, c)
	}
	for _, t := range y.v {
		c := t.Clone()
		c.Name = yogiVPrefix + t.Name
		out = append(out, c)
	}
	return out
}

// Restore accepts what State returned. Whether it fits the model is checked
// at the next Step, when the model is known.
func (y *yogi) Restore(state tensor.List) error {
	m, v, err := parseYogiState(state)
	if err != nil {
		return fmt.Errorf("aggregate: fed-yogi restore: %w", err)
	}
	y.mu.Lock()
	defer y.mu.Unlock()
	y.m, y.v = m, v
	y.spareM, y.spareV = nil, nil
	return nil
}

func parseYogiState(state tensor.List) (m, v tensor.List, err error) {
	if len(state) == 0 {
		return nil, nil, nil
	}
	if len(state)%2 != 0 {
		return nil, nil, fmt.Errorf("%d tensors, want an m and a v per model tensor", len(state))
	}
	k := len(state) / 2
	m, v = make(tensor.List, k), make(tensor.List, k)
	for i := range k {
		mt, vt := state[i], state[k+i]
		name, ok := strings.CutPrefix(mt.Name, yogiMPrefix)
		if !ok {
			return nil, nil, fmt.Errorf("tensor %d: name %q, want prefix %q", i, mt.Name, yogiMPrefix)
		}
		m[i] = tensor.Tensor{Name: name, Shape: mt.Shape, Data: mt.Data}.Clone()
		if vt.Name != yogiVPrefix+name {
			return nil, nil, fmt.Errorf("tensor %d: name %q, want %q", k+i, vt.Name, yogiVPrefix+name)
		}
		v[i] = tensor.Tensor{Name: name, Shape: vt.Shape, Data: vt.Data}.Clone()
	}
	if err := checkModel(m); err != nil {
		return nil, nil, fmt.Errorf("first moment: %w", err)
	}
	if err := m.CheckCompatible(v); err != nil {
		return nil, nil, fmt.Errorf("second moment: %w", err)
	}
	if err := m.CheckFinite(); err != nil {
		return nil, nil, fmt.Errorf("first moment: %w", err)
	}
	if err := v.CheckFinite(); err != nil {
		return nil, nil, fmt.Errorf("second moment: %w", err)
	}
	for _, t := range v {
		for _, x := range t.Data {
			if x < 0 {
				// Yogi keeps v > 0; a negative v would make √v NaN.
				return nil, nil, fmt.Errorf("second moment %q holds a negative value %v", t.Name, x)
			}
		}
	}
	return m, v, nil
}
