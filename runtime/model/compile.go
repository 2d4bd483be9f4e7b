package model

import "fmt"

// Modules says how a backend makes its modules of a layer tree; Compile
// walks the tree with it, so the tree's shape and the rule of which layers
// a backend can run have one owner.
type Modules[M any] struct {
	// Leaf makes the module of a layer without children. A Conv is
	// dense (Groups 1) or, when depthwise says so, depthwise without bias
	// or activation; Compile refuses every other grouping.
	Leaf func(l *Layer, depthwise bool) M
	// Seq, Residual and Shuffle combine their children's modules;
	// Residual's short is the zero M when the layer has no shortcut.
	Seq      func(l *Layer, kids []M) M
	Residual func(l *Layer, main, short M) M
	Shuffle  func(l *Layer, kids []M) M
}

// Compile turns the tree at l into modules.
func Compile[M any](l *Layer, ms Modules[M]) (M, error) {
	var zero M
	switch l.Kind {
	case Conv:
		switch {
		case l.Groups == 1:
			return ms.Leaf(l, false), nil
		case l.Groups == l.In.C && l.Out.C == l.In.C && !l.Bias && l.Act == ActNone:
			return ms.Leaf(l, true), nil
		}
		return zero, fmt.Errorf("layer %s: grouped convolution with %d groups (or a depthwise one with a bias or an activation) is not supported", l.Name, l.Groups)
	case BatchNorm, MaxPool, GlobalAvgPool, Linear, Dropout:
		return ms.Leaf(l, false), nil
	}
	kids := make([]M, len(l.Children))
	for i, ch := range l.Children {
		m, err := Compile(ch, ms)
		if err != nil {
			return zero, err
		}
		kids[i] = m
	}
	switch l.Kind {
	case Seq:
		return ms.Seq(l, kids), nil
	case Residual:
		short := zero
		if len(kids) > 1 {
			short = kids[1]
		}
		return ms.Residual(l, kids[0], short), nil
	case Shuffle:
		return ms.Shuffle(l, kids), nil
	}
	return zero, fmt.Errorf("layer %s: unknown kind %d", l.Name, l.Kind)
}

// BatchNormPlane is the smallest H×W that a BatchNorm of the tree at l
// normalises over; 0 when it has none.
func BatchNormPlane(l *Layer) int {
	hw := 0
	if l.Kind == BatchNorm {
		hw = l.Out.H * l.Out.W
	}
	for _, ch := range l.Children {
		if c := BatchNormPlane(ch); c > 0 && (hw == 0 || c < hw) {
			hw = c
		}
	}
	return hw
}

// CheckBatchNorm refuses a training batch of n samples that gives a
// BatchNorm channel a single value (PyTorch refuses it too: the variance
// of one value is undefined); plane is BatchNormPlane's.
func CheckBatchNorm(plane, n int) error {
	if plane > 0 && n*plane < 2 {
		return fmt.Errorf("batch norm needs more than 1 value per channel in training; a batch of %d sample(s) at this input size has %d", n, n*plane)
	}
	return nil
}
