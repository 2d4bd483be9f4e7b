// Package jobtest makes small, learnable data sets in the FedScale layout
// for the runtime's tests: each class is a fixed random pattern, samples are
// noisy copies of it, and clients hold a skewed (non-IID) mix of classes.
package jobtest

import (
	"fmt"
	"math/rand/v2"

	"github.com/fedscale/fedscale-go/runtime/data"
)

// SynthOptions shapes a synthetic data set.
type SynthOptions struct {
	Clients, PerClient, Test, Classes int
	Size                              int // images are Size x Size
	Noise                             float64
	Seed                              uint64 // the class patterns
	// SampleSeed, when set, draws the samples from a stream of their own,
	// so several data sets share class patterns but not samples (one per
	// device in deployment mode); FirstClient offsets client numbering.
	SampleSeed  uint64
	FirstClient int
}

// WriteSynthetic writes a data set in the FEMNIST layout under dir.
func WriteSynthetic(dir string, o SynthOptions) error {
	if o.Size == 0 {
		o.Size = 28
	}
	if o.Noise == 0 {
		o.Noise = 0.35
	}
	rng := rand.New(rand.NewPCG(o.Seed, 7))
	hw := o.Size * o.Size
	protos := make([][]float64, o.Classes)
	for c := range protos {
		protos[c] = make([]float64, hw)
		for i := range protos[c] {
			if rng.Float64() < 0.3 {
				protos[c][i] = 1
			}
		}
	}
	if o.SampleSeed != 0 {
		rng = rand.New(rand.NewPCG(o.SampleSeed, 11))
	}
	sample := func(c int) []uint8 {
		px := make([]uint8, hw)
		for i, v := range protos[c] {
			x := v + rng.NormFloat64()*o.Noise
			px[i] = uint8(max(0, min(255, x*255)))
		}
		return px
	}
	var train, test []data.Record
	for k := o.FirstClient; k < o.FirstClient+o.Clients; k++ {
		name := fmt.Sprintf("c%03d", k)
		major := k % o.Classes
		for i := 0; i < o.PerClient; i++ {
			c := major
			if rng.Float64() < 0.4 { // a skewed mix: mostly one class
				c = rng.IntN(o.Classes)
			}
			train = append(train, data.Record{Client: name, Label: c, Pixels: sample(c)})
		}
	}
	for i := 0; i < o.Test; i++ {
		c := i % o.Classes
		test = append(test, data.Record{Client: fmt.Sprintf("c%03d", o.FirstClient+i%o.Clients), Label: c, Pixels: sample(c)})
	}
	return data.WriteLayout(dir, o.Size, o.Size, train, test, nil)
}
