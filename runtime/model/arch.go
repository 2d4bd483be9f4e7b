package model

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// The torchvision architectures FedScale's default model_zoo (torchcv)
// builds. Each is described once, here, as a tree of Layers whose walk
// order is PyTorch's state_dict order; Zeros and Init read the parameters
// off the tree and compute backends compile the same tree, so names,
// shapes and geometry have one owner.
const (
	ResNet18         = "resnet18"
	ResNet34         = "resnet34"
	ResNet50         = "resnet50"
	MobileNetV2      = "mobilenet_v2"
	ShuffleNetV2x0_5 = "shufflenet_v2_x0_5"
	ShuffleNetV2x1_0 = "shufflenet_v2_x1_0"
	ShuffleNetV2x1_5 = "shufflenet_v2_x1_5"
	ShuffleNetV2x2_0 = "shufflenet_v2_x2_0"
)

// Kind is the operation of a Layer.
type Kind int

// Layer kinds.
const (
	// Conv is a 2-D convolution: OutC filters of K×K, Stride, Pad, Groups,
	// then Act. It has a bias only when Bias is set (LeNet-5's): none of
	// the torchvision networks uses one before batch norm.
	Conv Kind = iota
	// BatchNorm normalises each channel, then applies Act.
	BatchNorm
	// MaxPool takes the largest value of each K×K window (Stride, Pad;
	// padding never wins).
	MaxPool
	// GlobalAvgPool averages each channel to 1×1 (adaptive average
	// pooling to (1,1), or x.mean([2,3])).
	GlobalAvgPool
	// Linear is a fully connected layer with bias over the flattened input
	// (channel, row, column order, as torch.flatten), then Act.
	Linear
	// Dropout zeroes each input with probability P in training (mask from
	// DropoutUniform, survivors scaled by 1/(1-P)); identity in evaluation.
	Dropout
	// Seq applies Children in order.
	Seq
	// Residual is Act(Children[0](x) + s(x)) where s is Children[1] when
	// present (a downsampling shortcut), else the identity.
	Residual
	// Shuffle is ShuffleNetV2's unit. With two children (stride 2) it
	// concatenates Children[0](x) and Children[1](x); with one (stride 1)
	// it keeps the first half of x's channels and concatenates
	// Children[0] of the second half. Then it shuffles the channels in two
	// groups: output channel 2j+g is concatenated channel g*C/2+j.
	Shuffle
)

// Act is an activation applied after a BatchNorm, a Residual sum, or (the
// sequential models' fused ReLU) a Conv or Linear.
type Act int

// Activations.
const (
	ActNone Act = iota
	ActReLU
	ActReLU6
)

// InitRule says how Init draws a Conv or Linear weight.
type InitRule int

// Initialisation rules, as torchvision's model constructors apply them.
const (
	// InitDefault is PyTorch's default for Conv2d and Linear:
	// kaiming_uniform(a=√5), so weights (and a Linear's bias) are uniform
	// in ±1/√fan_in.
	InitDefault InitRule = iota
	// InitKaimingFanOut is kaiming_normal_(mode="fan_out") with ReLU's
	// gain: normal with std √(2/fan_out); a Linear's bias then starts at 0.
	InitKaimingFanOut
	// InitNormal001 is normal_(0, 0.01) with a zero bias (MobileNetV2's
	// classifier).
	InitNormal001
)

// Shape is the channels×height×width of one sample's activation.
type Shape struct{ C, H, W int }

// Size returns C*H*W.
func (s Shape) Size() int { return s.C * s.H * s.W }

func (s Shape) String() string { return fmt.Sprintf("%dx%dx%d", s.C, s.H, s.W) }

// Layer is one node of an architecture. In and Out are the per-sample
// shapes; parameters are named Name+".weight" and so on.
type Layer struct {
	Kind     Kind
	Name     string
	In, Out  Shape
	K        int // kernel size (Conv, MaxPool)
	Stride   int
	Pad      int
	Groups   int  // Conv: 1, or In.C for a depthwise convolution
	Bias     bool // Conv: a bias follows the weight
	Act      Act
	P        float32 // Dropout probability
	Index    int     // Dropout: its number in the network, for the mask
	Init     InitRule
	Children []*Layer
	// Param is the index in the parameter list of the layer's first
	// tensor (weight; for BatchNorm weight, bias, running_mean,
	// running_var, num_batches_tracked follow).
	Param int
}

// Arch is a network: its input, its root layer and its parameters.
type Arch struct {
	In     Shape
	Root   *Layer
	Params []param
}

// IsTorchvision reports whether name is one of the torchvision
// architectures (the others are the sequential lenet5/mlp/logistic family,
// described by an Arch too, in init.go).
func IsTorchvision(name string) bool {
	_, ok := archBuilders[name]
	return ok
}

// Build returns the architecture of spec, checking that the input is
// large enough for every layer.
func Build(s Spec) (*Arch, error) {
	f, torchvision := archBuilders[s.Name]
	if !torchvision {
		var ok bool
		if f, ok = seqBuilders[s.Name]; !ok {
			return nil, unknownModel(s.Name)
		}
	}
	if err := s.checkDims(); err != nil {
		return nil, err
	}
	// torchvision's first convolution takes RGB; a state_dict with another
	// input width would not load into the PyTorch model of the same name.
	if torchvision && s.Channels != 3 {
		return nil, fmt.Errorf("model %s takes 3-channel (RGB) images, the data has %d channel(s) of %dx%d", s.Name, s.Channels, s.Height, s.Width)
	}
	b := &builder{spec: s}
	in := Shape{s.Channels, s.Height, s.Width}
	root := f(b, in)
	if b.err != nil {
		return nil, b.err
	}
	if b.total > MaxParams {
		return nil, fmt.Errorf("model %s: %d parameters exceeds %d", s, b.total, MaxParams)
	}
	return &Arch{In: in, Root: root, Params: b.params}, nil
}

var archBuilders = map[string]func(*builder, Shape) *Layer{
	ResNet18:         func(b *builder, in Shape) *Layer { return b.resnet(in, false, [4]int{2, 2, 2, 2}) },
	ResNet34:         func(b *builder, in Shape) *Layer { return b.resnet(in, false, [4]int{3, 4, 6, 3}) },
	ResNet50:         func(b *builder, in Shape) *Layer { return b.resnet(in, true, [4]int{3, 4, 6, 3}) },
	MobileNetV2:      func(b *builder, in Shape) *Layer { return b.mobilenetV2(in) },
	ShuffleNetV2x0_5: func(b *builder, in Shape) *Layer { return b.shufflenetV2(in, [5]int{24, 48, 96, 192, 1024}) },
	ShuffleNetV2x1_0: func(b *builder, in Shape) *Layer { return b.shufflenetV2(in, [5]int{24, 116, 232, 464, 1024}) },
	ShuffleNetV2x1_5: func(b *builder, in Shape) *Layer { return b.shufflenetV2(in, [5]int{24, 176, 352, 704, 1024}) },
	ShuffleNetV2x2_0: func(b *builder, in Shape) *Layer { return b.shufflenetV2(in, [5]int{24, 244, 488, 976, 2048}) },
}

// builder accumulates parameters in state_dict order while the tree is
// built, their total size and the first geometry error.
type builder struct {
	spec     Spec
	params   []param
	dropouts int
	total    int // under 2^50 (see checkDims): no overflow
	err      error
}

func (b *builder) add(name string, shape []int, fanIn int) {
	b.params = append(b.params, param{name: name, shape: shape, fanIn: fanIn})
	b.total += prod(shape)
}

func prod(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// outDim is the output size of a window of k with stride and pad over n,
// as PyTorch floors it; it is < 1 when the input is too small.
func outDim(n, k, stride, pad int) int { return (n+2*pad-k)/stride + 1 }

func (b *builder) conv(name string, in Shape, outC, k, stride, pad, groups int, init InitRule) *Layer {
	out := Shape{outC, outDim(in.H, k, stride, pad), outDim(in.W, k, stride, pad)}
	if (out.H < 1 || out.W < 1 || in.H+2*pad < k || in.W+2*pad < k) && b.err == nil {
		b.err = fmt.Errorf("model %s: input %dx%d is too small: layer %s (%dx%d kernel, stride %d) has nothing to convolve at %dx%d",
			b.spec.Name, b.spec.Height, b.spec.Width, name, k, k, stride, in.H, in.W)
		out.H, out.W = max(out.H, 1), max(out.W, 1)
	}
	l := &Layer{Kind: Conv, Name: name, In: in, Out: out, K: k, Stride: stride, Pad: pad, Groups: groups, Init: init, Param: len(b.params)}
	b.add(name+".weight", []int{outC, in.C / groups, k, k}, in.C/groups*k*k)
	return l
}

func (b *builder) bn(name string, in Shape, act Act) *Layer {
	l := &Layer{Kind: BatchNorm, Name: name, In: in, Out: in, Act: act, Param: len(b.params)}
	for _, s := range []string{"weight", "bias", "running_mean", "running_var"} {
		b.add(name+"."+s, []int{in.C}, in.C)
	}
	b.add(name+".num_batches_tracked", []int{}, 1)
	return l
}

func (b *builder) linear(name string, in Shape, out int, init InitRule) *Layer {
	l := &Layer{Kind: Linear, Name: name, In: in, Out: Shape{out, 1, 1}, Init: init, Param: len(b.params)}
	b.add(name+".weight", []int{out, in.Size()}, in.Size())
	b.add(name+".bias", []int{out}, in.Size())
	return l
}

func (b *builder) maxPool(name string, in Shape, k, stride, pad int) *Layer {
	out := Shape{in.C, outDim(in.H, k, stride, pad), outDim(in.W, k, stride, pad)}
	if (out.H < 1 || out.W < 1) && b.err == nil {
		b.err = fmt.Errorf("model %s: input %dx%d is too small: %s has a %dx%d input", b.spec.Name, b.spec.Height, b.spec.Width, name, in.H, in.W)
		out.H, out.W = max(out.H, 1), max(out.W, 1)
	}
	return &Layer{Kind: MaxPool, Name: name, In: in, Out: out, K: k, Stride: stride, Pad: pad}
}

func seq(name string, ls ...*Layer) *Layer {
	return &Layer{Kind: Seq, Name: name, In: ls[0].In, Out: ls[len(ls)-1].Out, Children: ls}
}

// resnet is torchvision's ResNet: BasicBlock (expansion 1) or Bottleneck
// (expansion 4) stages of 64, 128, 256, 512 planes.
func (b *builder) resnet(in Shape, bottleneck bool, blocks [4]int) *Layer {
	const fo = InitKaimingFanOut
	c1 := b.conv("conv1", in, 64, 7, 2, 3, 1, fo)
	bn1 := b.bn("bn1", c1.Out, ActReLU)
	mp := b.maxPool("maxpool", bn1.Out, 3, 2, 1)
	layers := []*Layer{c1, bn1, mp}
	x := mp.Out
	expansion := 1
	if bottleneck {
		expansion = 4
	}
	for s, planes := range []int{64, 128, 256, 512} {
		stride := 1
		if s > 0 {
			stride = 2
		}
		for i := 0; i < blocks[s]; i++ {
			name := fmt.Sprintf("layer%d.%d", s+1, i)
			st := 1
			if i == 0 {
				st = stride
			}
			var main []*Layer
			if bottleneck {
				l1 := b.conv(name+".conv1", x, planes, 1, 1, 0, 1, fo)
				n1 := b.bn(name+".bn1", l1.Out, ActReLU)
				l2 := b.conv(name+".conv2", n1.Out, planes, 3, st, 1, 1, fo)
				n2 := b.bn(name+".bn2", l2.Out, ActReLU)
				l3 := b.conv(name+".conv3", n2.Out, planes*expansion, 1, 1, 0, 1, fo)
				n3 := b.bn(name+".bn3", l3.Out, ActNone)
				main = []*Layer{l1, n1, l2, n2, l3, n3}
			} else {
				l1 := b.conv(name+".conv1", x, planes, 3, st, 1, 1, fo)
				n1 := b.bn(name+".bn1", l1.Out, ActReLU)
				l2 := b.conv(name+".conv2", n1.Out, planes, 3, 1, 1, 1, fo)
				n2 := b.bn(name+".bn2", l2.Out, ActNone)
				main = []*Layer{l1, n1, l2, n2}
			}
			blk := &Layer{Kind: Residual, Name: name, In: x, Act: ActReLU, Children: []*Layer{seq(name, main...)}}
			if st != 1 || x.C != planes*expansion {
				d := b.conv(name+".downsample.0", x, planes*expansion, 1, st, 0, 1, fo)
				dn := b.bn(name+".downsample.1", d.Out, ActNone)
				blk.Children = append(blk.Children, seq(name+".downsample", d, dn))
			}
			blk.Out = main[len(main)-1].Out
			layers = append(layers, blk)
			x = blk.Out
		}
	}
	gap := &Layer{Kind: GlobalAvgPool, Name: "avgpool", In: x, Out: Shape{x.C, 1, 1}}
	fc := b.linear("fc", gap.Out, b.spec.Classes, InitDefault)
	return seq("", append(layers, gap, fc)...)
}

// mobilenetV2 is torchvision's MobileNetV2 at width 1.0.
func (b *builder) mobilenetV2(in Shape) *Layer {
	const fo = InitKaimingFanOut
	convBN := func(name string, x Shape, outC, k, stride, groups int, act Act) []*Layer {
		c := b.conv(name+".0", x, outC, k, stride, (k-1)/2, groups, fo)
		return []*Layer{c, b.bn(name+".1", c.Out, act)}
	}
	layers := convBN("features.0", in, 32, 3, 2, 1, ActReLU6)
	x := layers[1].Out
	idx := 1
	for _, st := range [][4]int{{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}} {
		t, c, n, s := st[0], st[1], st[2], st[3]
		for i := 0; i < n; i++ {
			stride := 1
			if i == 0 {
				stride = s
			}
			name := fmt.Sprintf("features.%d.conv", idx)
			hidden := x.C * t
			var body []*Layer
			j := 0
			h := x
			if t != 1 {
				body = append(body, convBN(fmt.Sprintf("%s.%d", name, j), h, hidden, 1, 1, 1, ActReLU6)...)
				h = body[len(body)-1].Out
				j++
			}
			body = append(body, convBN(fmt.Sprintf("%s.%d", name, j), h, hidden, 3, stride, hidden, ActReLU6)...)
			h = body[len(body)-1].Out
			pw := b.conv(fmt.Sprintf("%s.%d", name, j+1), h, c, 1, 1, 0, 1, fo)
			pn := b.bn(fmt.Sprintf("%s.%d", name, j+2), pw.Out, ActNone)
			body = append(body, pw, pn)
			blk := seq(name, body...)
			if stride == 1 && x.C == c {
				blk = &Layer{Kind: Residual, Name: name, In: x, Out: pn.Out, Act: ActNone, Children: []*Layer{blk}}
			}
			layers = append(layers, blk)
			x = blk.Out
			idx++
		}
	}
	layers = append(layers, convBN(fmt.Sprintf("features.%d", idx), x, 1280, 1, 1, 1, ActReLU6)...)
	x = layers[len(layers)-1].Out
	gap := &Layer{Kind: GlobalAvgPool, Name: "avgpool", In: x, Out: Shape{x.C, 1, 1}}
	drop := &Layer{Kind: Dropout, Name: "classifier.0", In: gap.Out, Out: gap.Out, P: 0.2, Index: b.dropouts}
	b.dropouts++
	fc := b.linear("classifier.1", gap.Out, b.spec.Classes, InitNormal001)
	return seq("", append(layers, gap, drop, fc)...)
}

// shufflenetV2 is torchvision's ShuffleNetV2 with stage repeats 4, 8, 4
// and the given stage widths. It keeps PyTorch's default initialisation.
func (b *builder) shufflenetV2(in Shape, widths [5]int) *Layer {
	const di = InitDefault
	c1 := b.conv("conv1.0", in, widths[0], 3, 2, 1, 1, di)
	n1 := b.bn("conv1.1", c1.Out, ActReLU)
	mp := b.maxPool("maxpool", n1.Out, 3, 2, 1)
	layers := []*Layer{c1, n1, mp}
	x := mp.Out
	for s, repeats := range []int{4, 8, 4} {
		out := widths[s+1]
		for i := 0; i < repeats; i++ {
			name := fmt.Sprintf("stage%d.%d", s+2, i)
			bf := out / 2
			u := &Layer{Kind: Shuffle, Name: name, In: x}
			stride := 1
			inB2 := Shape{bf, x.H, x.W}
			if i == 0 {
				stride = 2
				d := b.conv(name+".branch1.0", x, x.C, 3, 2, 1, x.C, di)
				dn := b.bn(name+".branch1.1", d.Out, ActNone)
				p := b.conv(name+".branch1.2", dn.Out, bf, 1, 1, 0, 1, di)
				pn := b.bn(name+".branch1.3", p.Out, ActReLU)
				u.Children = append(u.Children, seq(name+".branch1", d, dn, p, pn))
				inB2 = x
			} else if x.C != 2*bf && b.err == nil {
				b.err = fmt.Errorf("model %s: %s: %d channels cannot be split in two halves of %d", b.spec.Name, name, x.C, bf)
			}
			p1 := b.conv(name+".branch2.0", inB2, bf, 1, 1, 0, 1, di)
			n1 := b.bn(name+".branch2.1", p1.Out, ActReLU)
			d := b.conv(name+".branch2.3", n1.Out, bf, 3, stride, 1, bf, di)
			dn := b.bn(name+".branch2.4", d.Out, ActNone)
			p2 := b.conv(name+".branch2.5", dn.Out, bf, 1, 1, 0, 1, di)
			n2 := b.bn(name+".branch2.6", p2.Out, ActReLU)
			u.Children = append(u.Children, seq(name+".branch2", p1, n1, d, dn, p2, n2))
			u.Out = Shape{2 * bf, n2.Out.H, n2.Out.W}
			layers = append(layers, u)
			x = u.Out
		}
	}
	c5 := b.conv("conv5.0", x, widths[4], 1, 1, 0, 1, di)
	n5 := b.bn("conv5.1", c5.Out, ActReLU)
	gap := &Layer{Kind: GlobalAvgPool, Name: "mean", In: n5.Out, Out: Shape{n5.Out.C, 1, 1}}
	fc := b.linear("fc", gap.Out, b.spec.Classes, di)
	return seq("", append(layers, c5, n5, gap, fc)...)
}

// initGraph fills out, the values of a's parameters in order, as
// torchvision initialises them. Each tensor draws from its own stream (see
// Init).
func initGraph(a *Arch, out [][]float32, seed uint64) {
	var walk func(l *Layer)
	walk = func(l *Layer) {
		switch l.Kind {
		case Conv:
			w := out[l.Param]
			p := a.Params[l.Param]
			rng := tensorRNG(seed, l.Param)
			switch l.Init {
			case InitKaimingFanOut:
				fanOut := p.shape[0] * l.K * l.K
				std := math.Sqrt(2 / float64(fanOut))
				for j := range w {
					w[j] = float32(rng.NormFloat64() * std)
				}
			default: // PyTorch's Conv2d default, bias included
				bound := 1 / math.Sqrt(float64(p.fanIn))
				uniform(w, rng, bound)
				if l.Bias {
					uniform(out[l.Param+1], tensorRNG(seed, l.Param+1), bound)
				}
			}
		case BatchNorm:
			for i, v := range []float32{1, 0, 0, 1} {
				t := out[l.Param+i]
				for j := range t {
					t[j] = v
				}
			}
		case Linear:
			w, bias := out[l.Param], out[l.Param+1]
			fanIn := a.Params[l.Param].fanIn
			switch l.Init {
			case InitNormal001:
				rng := tensorRNG(seed, l.Param)
				for j := range w {
					w[j] = float32(rng.NormFloat64() * 0.01)
				}
			default: // PyTorch's Linear default; ResNet keeps it for fc
				bound := 1 / math.Sqrt(float64(fanIn))
				uniform(w, tensorRNG(seed, l.Param), bound)
				uniform(bias, tensorRNG(seed, l.Param+1), bound)
			}
		}
		for _, c := range l.Children {
			walk(c)
		}
	}
	walk(a.Root)
}

// uniform fills t with draws from rng uniform in ±bound.
func uniform(t []float32, rng *rand.Rand, bound float64) {
	for j := range t {
		t[j] = float32((2*rng.Float64() - 1) * bound)
	}
}
