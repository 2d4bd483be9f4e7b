package model

import (
	"fmt"
	"math"
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
// input is too small. Backends use it so the geometry is defined once.
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

func dense(prefix string, in, out int) []param {
	return []param{
		{prefix + ".weight", []int{out, in}, in},
		{prefix + ".bias", []int{out}, in},
	}
}

func conv(prefix string, inC, outC, k int) []param {
	fan := inC * k * k
	return []param{
		{prefix + ".weight", []int{outC, inC, k, k}, fan},
		{prefix + ".bias", []int{outC}, fan},
	}
}

// layout returns the parameters of spec's architecture in forward order.
func layout(s Spec) ([]param, error) {
	var ps []param
	switch s.Name {
	case Logistic, MLP, LeNet5, LR, SVM:
	default:
		a, err := Build(s)
		if err != nil {
			return nil, err
		}
		return a.Params, nil
	}
	if err := s.checkDims(); err != nil {
		return nil, err
	}
	in := s.InputSize()
	switch s.Name {
	case Logistic:
		ps = dense("fc", in, s.Classes)
	case LR:
		ps = dense("linear", in, s.Classes)
	case SVM:
		ps = dense("fc", in, s.Classes)
	case MLP:
		ps = append(dense("fc1", in, mlpHidden), dense("fc2", mlpHidden, mlpHidden)...)
		ps = append(ps, dense("fc3", mlpHidden, s.Classes)...)
	case LeNet5:
		fh, fw := LeNetFeatures(s.Height, s.Width)
		if fh == 0 {
			return nil, fmt.Errorf("model %s: input %dx%d is too small: lenet5 needs at least %dx%d", s.Name, s.Height, s.Width, lenetMinHW, lenetMinHW)
		}
		ps = append(conv("conv1", s.Channels, lenetC1, lenetK), conv("conv2", lenetC1, lenetC2, lenetK)...)
		ps = append(ps, dense("fc1", lenetC2*fh*fw, lenetFC1)...)
		ps = append(ps, dense("fc2", lenetFC1, lenetFC2)...)
		ps = append(ps, dense("fc3", lenetFC2, s.Classes)...)
	}
	total := 0
	for _, p := range ps {
		total += tensor.Size(p.shape)
	}
	if total > MaxParams {
		return nil, fmt.Errorf("model %s: %d parameters exceeds %d", s, total, MaxParams)
	}
	return ps, nil
}

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
	ps, err := layout(spec)
	if err != nil {
		return nil, err
	}
	out := make(tensor.List, len(ps))
	for i, p := range ps {
		out[i] = tensor.Tensor{Name: p.name, Shape: append([]int(nil), p.shape...)}
	}
	return out, nil
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
	if IsGraph(spec.Name) {
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
	ps, err := layout(spec)
	if err != nil {
		return nil, err
	}
	out := make(tensor.List, len(ps))
	for i, p := range ps {
		t := tensor.New(p.name, p.shape...)
		rng := tensorRNG(seed, i)
		bound := 1 / math.Sqrt(float64(p.fanIn))
		for j := range t.Data {
			t.Data[j] = float32((2*rng.Float64() - 1) * bound)
		}
		out[i] = t
	}
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
