// Package tensor holds the named float32 arrays that model weights are made
// of. It is the common currency of the runtime: models produce and train
// them, the server optimizers combine them, and the wire protocol and the
// checkpoints carry them. It has no dependencies so every other runtime
// package can use it.
package tensor

import (
	"fmt"
	"math"
)

// Tensor is a named, dense, row-major float32 array.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// Size returns the number of elements the shape describes.
func Size(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// New returns a zero tensor of the given shape.
func New(name string, shape ...int) Tensor {
	return Tensor{Name: name, Shape: append([]int(nil), shape...), Data: make([]float32, Size(shape))}
}

// Clone returns a deep copy of t.
func (t Tensor) Clone() Tensor {
	return Tensor{Name: t.Name, Shape: append([]int(nil), t.Shape...), Data: append([]float32(nil), t.Data...)}
}

// List is an ordered set of tensors: the parameters of one model. The order
// is part of the model's definition and never depends on map iteration.
type List []Tensor

// Clone returns a deep copy of l.
func (l List) Clone() List {
	out := make(List, len(l))
	for i, t := range l {
		out[i] = t.Clone()
	}
	return out
}

// ZerosLike returns a list of zero tensors with the names and shapes of l.
func (l List) ZerosLike() List {
	out := make(List, len(l))
	for i, t := range l {
		out[i] = New(t.Name, t.Shape...)
	}
	return out
}

// NumElements returns the total number of float32 values in l.
func (l List) NumElements() int {
	n := 0
	for _, t := range l {
		n += len(t.Data)
	}
	return n
}

// Bytes returns the size of l's values in bytes (4 per element).
func (l List) Bytes() int64 { return int64(l.NumElements()) * 4 }

// CheckCompatible reports whether other has the same names and shapes as l,
// in the same order, and every data slice matches its shape.
func (l List) CheckCompatible(other List) error {
	if err := l.CheckLayout(other); err != nil {
		return err
	}
	for _, b := range other {
		if len(b.Data) != Size(b.Shape) {
			return fmt.Errorf("tensor %q: %d values for shape %v", b.Name, len(b.Data), b.Shape)
		}
	}
	return nil
}

// CheckLayout reports whether other has the same names and shapes as l, in
// the same order; the data are not looked at.
func (l List) CheckLayout(other List) error {
	if len(l) != len(other) {
		return fmt.Errorf("tensor count: have %d, want %d", len(other), len(l))
	}
	for i := range l {
		a, b := l[i], other[i]
		if a.Name != b.Name {
			return fmt.Errorf("tensor %d: name %q, want %q", i, b.Name, a.Name)
		}
		if !equalShape(a.Shape, b.Shape) {
			return fmt.Errorf("tensor %q: shape %v, want %v", a.Name, b.Shape, a.Shape)
		}
	}
	return nil
}

// CheckFinite returns an error naming the first tensor holding a NaN or Inf.
func (l List) CheckFinite() error {
	for _, t := range l {
		for _, v := range t.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("tensor %q holds a non-finite value", t.Name)
			}
		}
	}
	return nil
}

func equalShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
