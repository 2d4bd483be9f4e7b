package aggregate

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// clipped puts the norm bound (clip_norm) in front of any policy, the
// defence of Sun et al. ("Can You Really Backdoor Federated Learning?",
// 2019): an update w farther than C from the global model g, in L2 over the
// whole model, reaches the policy as g + (w − g)·C/‖w − g‖, so a boosted
// update counts no more than an honest one of length C. The caller's
// updates are not written; clipped ones are copies.
type clipped struct {
	Server
	bound float64
}

func (c *clipped) Step(global tensor.List, updates []Update, lr float64) (tensor.List, error) {
	bounded, err := clipUpdates(global, updates, c.bound)
	if err != nil {
		return nil, fmt.Errorf("aggregate: clip_norm step: %w", err)
	}
	return c.Server.Step(global, bounded, lr)
}

// clipUpdates returns updates with each one's distance from global bounded
// by bound; an update holding a NaN or Inf is a ClientError.
func clipUpdates(global tensor.List, updates []Update, bound float64) ([]Update, error) {
	if _, _, err := checkRound(global, updates); err != nil {
		return nil, err
	}
	n := len(updates)
	sq := reduceBlocks(global, n, n, func(s span, part []float64) {
		m := s.hi - s.lo
		g := s.of(global, m)
		for k, u := range updates {
			part[k] += sqDist(g, s.of(u.Weights, m))
		}
	})
	out := updates
	for k, u := range updates {
		norm := math.Sqrt(sq[k])
		if !finite(norm) {
			if err := u.Weights.CheckFinite(); err != nil {
				return nil, &ClientError{u.ClientID, err}
			}
			return nil, &ClientError{u.ClientID, errors.New("internal error: finite weights gave a non-finite norm")}
		}
		if norm <= bound {
			continue
		}
		if &out[0] == &updates[0] {
			out = slices.Clone(updates)
		}
		out[k].Weights = scaleDelta(global, u.Weights, bound/norm)
	}
	return out, nil
}

// scaleDelta returns global + (w − global)·r.
func scaleDelta(global, w tensor.List, r float64) tensor.List {
	out := global.ZerosLike()
	forEachBlock(global, 1, 0, func(_ int, s span, _ []float64) bool {
		m := s.hi - s.lo
		g, x, y := s.of(global, m), s.of(w, m), s.of(out, m)
		for j := range y {
			gj := float64(g[j])
			y[j] = float32(gj + float64(r*(float64(x[j])-gj)))
		}
		return true
	})
	return out
}
