// Package cpu is the pure-Go CPU backend of model.Trainer: forward and
// backward passes of the supported architectures, softmax cross-entropy
// and SGD, in float32 on one goroutine per call.
//
// Each call is single-threaded on purpose: the runtime runs many client
// tasks in parallel, and a fixed summation order makes every result
// bit-for-bit reproducible whatever GOMAXPROCS is. Only arithmetic belongs
// here; specs, initialisation and validation rules live in package model.
package cpu

import (
	"github.com/fedscale/fedscale-go/runtime/model"
)

// evalChunk bounds the samples Evaluate forwards at once, so a large test
// batch does not need activations for all of it. Results do not depend on
// it: each sample's forward pass is independent of the others.
const evalChunk = 64

// New returns a CPU Trainer for spec. Every model, the sequential
// lenet5/mlp/logistic family as well as the torchvision architectures,
// runs on the graph engine (net.go) compiled from model.Build's layer tree.
func New(spec model.Spec) (model.Trainer, error) { return newNet(spec) }

// sgdStep applies one torch.optim.SGD update to w. On the first step the
// momentum buffer is taken as zero, so it is overwritten without a read.
func sgdStep(w, g, buf, anchor []float32, o model.SGD, first bool) {
	g = g[:len(w)]
	buf = buf[:len(w)]
	lr, mom, wd, mu := o.LR, o.Momentum, o.WeightDecay, o.ProxMu
	if anchor != nil {
		anchor = anchor[:len(w)]
		for i, v := range w {
			d := g[i] + wd*v + mu*(v-anchor[i])
			if !first {
				d += mom * buf[i]
			}
			buf[i] = d
			w[i] = v - lr*d
		}
		return
	}
	for i, v := range w {
		d := g[i] + wd*v
		if !first {
			d += mom * buf[i]
		}
		buf[i] = d
		w[i] = v - lr*d
	}
}
