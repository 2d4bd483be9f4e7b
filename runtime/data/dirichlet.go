package data

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// dirichletAttempts bounds the redraws made to satisfy minSamples; with
// feasible settings one or two draws suffice, so hitting it means the
// settings are too skewed.
const dirichletAttempts = 200

// Dirichlet partitions samples among clients non-IID: for each class it draws
// client proportions from Dir(alpha) and splits the class's (shuffled)
// samples accordingly. Small alpha gives each client few classes; large alpha
// approaches an IID split. The draw is repeated (a bounded number of times)
// until every client has at least minSamples samples. The result holds, per
// client, its sample indices in increasing order; every index appears exactly
// once. The same arguments always give the same partition.
func Dirichlet[L ~uint8 | ~int | ~int32](labels []L, clients int, alpha float64, minSamples int, seed uint64) ([][]int, error) {
	switch {
	case clients <= 0:
		return nil, fmt.Errorf("dirichlet partition: %d clients, need at least 1", clients)
	case !(alpha > 0) || math.IsInf(alpha, 1):
		return nil, fmt.Errorf("dirichlet partition: alpha %v, need a positive finite number", alpha)
	case minSamples < 0:
		return nil, fmt.Errorf("dirichlet partition: min samples %d is negative", minSamples)
	case minSamples > len(labels)/clients:
		return nil, fmt.Errorf("dirichlet partition: %d clients x %d min samples exceeds %d samples; use fewer clients or a smaller min-samples",
			clients, minSamples, len(labels))
	}

	// Group sample indices by class, classes in increasing order.
	byClass := map[int][]int{}
	for i, l := range labels {
		if l < 0 {
			return nil, fmt.Errorf("dirichlet partition: sample %d has negative label %d", i, l)
		}
		byClass[int(l)] = append(byClass[int(l)], i)
	}
	classes := make([]int, 0, len(byClass))
	for c := range byClass {
		classes = append(classes, c)
	}
	slices.Sort(classes)

	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	props := make([]float64, clients)
	counts := make([]int, clients)
	smallest := 0
	for attempt := 0; attempt < dirichletAttempts; attempt++ {
		parts := make([][]int, clients)
		for _, c := range classes {
			idx := slices.Clone(byClass[c])
			rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
			drawDirichlet(rng, alpha, props)
			// Cut points at floor(cumulative proportion * n), as numpy's
			// usual split does; the last client takes the remainder.
			start, cum := 0, 0.0
			for k := range clients {
				cum += props[k]
				end := int(cum * float64(len(idx)))
				if k == clients-1 || end > len(idx) {
					end = len(idx)
				}
				end = max(end, start)
				parts[k] = append(parts[k], idx[start:end]...)
				start = end
			}
		}
		for k := range parts {
			counts[k] = len(parts[k])
		}
		smallest = slices.Min(counts)
		if smallest >= minSamples {
			for _, p := range parts {
				slices.Sort(p)
			}
			return parts, nil
		}
	}
	return nil, fmt.Errorf("dirichlet partition: after %d draws some client still has fewer than %d samples (last draw's smallest: %d); use a larger alpha, fewer clients or a smaller min-samples",
		dirichletAttempts, minSamples, smallest)
}

// drawDirichlet fills p with a sample of Dir(alpha, ..., alpha). It works in
// log space because for small alpha the gamma variates underflow to zero.
func drawDirichlet(rng *rand.Rand, alpha float64, p []float64) {
	maxLog := math.Inf(-1)
	for i := range p {
		p[i] = logGamma(rng, alpha)
		maxLog = max(maxLog, p[i])
	}
	sum := 0.0
	for i := range p {
		p[i] = math.Exp(p[i] - maxLog)
		sum += p[i]
	}
	for i := range p {
		p[i] /= sum
	}
}

// logGamma returns the log of a Gamma(shape, 1) variate: Marsaglia and
// Tsang's method for shape >= 1, and for shape < 1 the boost
// Gamma(a) = Gamma(a+1) * U^(1/a), whose log cannot underflow.
func logGamma(rng *rand.Rand, shape float64) float64 {
	if shape < 1 {
		u := 1 - rng.Float64() // in (0,1], so the log is finite
		return logGamma(rng, shape+1) + math.Log(u)/shape
	}
	d := shape - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := rng.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := 1 - rng.Float64()
		if math.Log(u) < 0.5*x*x+d-d*v+d*math.Log(v) {
			return math.Log(d * v)
		}
	}
}
