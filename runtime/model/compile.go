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
