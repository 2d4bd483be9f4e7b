package model

import (
	"fmt"
	"math/rand/v2"

	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// param describes one parameter tensor of an architecture.
type param struct {
	name  string
	shape []int
	fanIn int // inputs feeding each output unit: sets the init bound
}

// Layer widths of the FedAvg paper's "2NN" and of LeNet-5.
const (
	mlpHidden = 200

	lenetK     = 5 // kernel size of both convolutions
	lenetPad1  = 2
	lenetC1    = 6
	lenetC2    = 16
	lenetFC1   = 120
	lenetFC2   = 84
	lenetMinHW = 12 // smallest input whose second pooling leaves 1×1
)

// LeNetFeatures returns the spatial size of LeNet-5's last feature map for
// an h×w input (5×5 for 28×28): conv1 keeps the size (pad 2), each 2×2 max
// pooling floors, conv2 (no padding) removes 4. It returns zeros when the
// input is too small.
func LeNetFeatures(h, w int) (fh, fw int) {
	f := func(n int) int {
		n = (n+2*lenetPad1-lenetK+1)/2 - lenetK + 1
		if n < 2 {
			return 0
		}
		return n / 2
	}
	fh, fw = f(h), f(w)
	if fh == 0 || fw == 0 {
		return 0, 0
	}
	return fh, fw
}

// seqBuilders describes the sequential models as layer trees, like the
// torchvision architectures in arch.go: one owner of their names, shapes
// and geometry for Layout, Init and every backend.
var seqBuilders = map[string]func(*builder, Shape) *Layer{
	Logistic: func(b *builder, in Shape) *Layer { return seq("", b.linear("fc", in, b.spec.Classes, InitDefault)) },
	LR:       func(b *builder, in Shape) *Layer { return seq("", b.linear("linear", in, b.spec.Classes, InitDefault)) },
	SVM:      func(b *builder, in Shape) *Layer { return seq("", b.linear("fc", in, b.spec.Classes, InitDefault)) },
	MLP: func(b *builder, in Shape) *Layer {
		fc1 := b.linear("fc1", in, mlpHidden, InitDefault)
		fc1.Act = ActReLU
		fc2 := b.linear("fc2", fc1.Out, mlpHidden, InitDefault)
		fc2.Act = ActReLU
		return seq("", fc1, fc2, b.linear("fc3", fc2.Out, b.spec.Classes, InitDefault))
	},
	LeNet5: func(b *builder, in Shape) *Layer {
		if fh, _ := LeNetFeatures(in.H, in.W); fh == 0 {
			b.err = fmt.Errorf("model %s: input %dx%d is too small: lenet5 needs at least %dx%d", b.spec.Name, in.H, in.W, lenetMinHW, lenetMinHW)
			return nil
		}
		c1 := b.convBiasReLU("conv1", in, lenetC1, lenetK, lenetPad1)
		p1 := b.maxPool("pool1", c1.Out, 2, 2, 0)
		c2 := b.convBiasReLU("conv2", p1.Out, lenetC2, lenetK, 0)
		p2 := b.maxPool("pool2", c2.Out, 2, 2, 0)
		fc1 := b.linear("fc1", p2.Out, lenetFC1, InitDefault)
		fc1.Act = ActReLU
		fc2 := b.linear("fc2", fc1.Out, lenetFC2, InitDefault)
		fc2.Act = ActReLU
		return seq("", c1, p1, c2, p2, fc1, fc2, b.linear("fc3", fc2.Out, b.spec.Classes, InitDefault))
	},
}

// convBiasReLU is LeNet-5's convolution: stride 1, a bias, ReLU fused.
func (b *builder) convBiasReLU(name string, in Shape, outC, k, pad int) *Layer {
	l := b.conv(name, in, outC, k, 1, pad, 1, InitDefault)
	l.Bias, l.Act = true, ActReLU
	b.add(name+".bias", []int{outC}, in.C*k*k)
	return l
}

// layout returns the parameters of spec's architecture in forward order.
// Zeros returns zero-valued parameters of spec's architecture: the names
// and shapes that Init produces and that Trainers check params against.
func Zeros(spec Spec) (tensor.List, error) {
	out, err := Layout(spec)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Data = make([]float32, tensor.Size(out[i].Shape))
	}
	return out, nil
}

// Layout returns the names and shapes of spec's parameters with no values
// (nil Data): what a Trainer checks params against, without the memory of
// a whole model.
func Layout(spec Spec) (tensor.List, error) {
	a, err := Build(spec)
	if err != nil {
		return nil, err
	}
	return a.Layout(), nil
}

// Layout is the parameters' names and shapes, without data, in
// state_dict order (what Layout(spec) returns for a's spec).
func (a *Arch) Layout() tensor.List {
	out := make(tensor.List, len(a.Params))
	for i, p := range a.Params {
		out[i] = tensor.Tensor{Name: p.name, Shape: append([]int(nil), p.shape...)}
	}
	return out
}

// Init returns spec's parameters initialised as PyTorch and torchvision
// do: for the sequential models PyTorch's defaults for Linear and Conv2d
// (weights and biases uniform in ±1/sqrt(fan_in)); for the torchvision
// architectures their constructors' rules (see InitRule), batch norm
// weight 1, bias 0, running mean 0, running variance 1. The values depend
// only on spec and seed: each tensor draws from its own PCG stream derived
// from (seed, tensor index), so the order of generation cannot leak
// between tensors.
func Init(spec Spec, seed uint64) (tensor.List, error) {
	a, err := Build(spec)
	if err != nil {
		return nil, err
	}
	out := make(tensor.List, len(a.Params))
	data := make([][]float32, len(a.Params))
	for i, p := range a.Params {
		out[i] = tensor.New(p.name, p.shape...)
		data[i] = out[i].Data
	}
	initGraph(a, data, seed)
	return out, nil
}

// tensorRNG is the random stream of parameter tensor i.
func tensorRNG(seed uint64, i int) *rand.Rand {
	return rand.New(rand.NewPCG(splitmix64(seed), splitmix64(seed^(uint64(i)+1)*0x9e3779b97f4a7c15)))
}

// splitmix64 scrambles seeds so that nearby seeds give unrelated streams.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
