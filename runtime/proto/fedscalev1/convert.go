package fedscalev1

import (
	"fmt"

	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// ProtocolVersion is the version of this protocol that this build speaks.
// Bump it on any change that an older peer would misread.
const ProtocolVersion uint32 = 3

// FromTensors converts runtime tensors to wire tensors. The data slices are
// shared, not copied: the caller must not modify l while the message lives.
func FromTensors(l tensor.List) []*Tensor {
	out := make([]*Tensor, len(l))
	for i, t := range l {
		out[i] = &Tensor{Name: t.Name, Shape: wireShape(t.Shape), Data: t.Data}
	}
	return out
}

func wireShape(s []int) []int64 {
	out := make([]int64, len(s))
	for i, d := range s {
		out[i] = int64(d)
	}
	return out
}

// maxTensorValues bounds one tensor's element count.
const maxTensorValues = 1 << 40

// checkShape returns a wire tensor's shape and element count, refusing
// negative dimensions and counts no tensor of ours reaches.
func checkShape(t *Tensor) ([]int, int64, error) {
	shape := make([]int, len(t.GetShape()))
	n := int64(1)
	for j, d := range t.GetShape() {
		if d < 0 || d > 1<<31 {
			return nil, 0, fmt.Errorf("tensor %q: invalid dimension %d", t.GetName(), d)
		}
		shape[j] = int(d)
		// Checked before multiplying: n*d could wrap around to a small
		// number (found by FuzzAggregatorMessage).
		if d != 0 && n > maxTensorValues/d {
			return nil, 0, fmt.Errorf("tensor %q: shape %v too large", t.GetName(), t.GetShape())
		}
		n *= d
	}
	return shape, n, nil
}

// ToTensors converts wire tensors to runtime tensors, checking that every
// tensor's data matches its shape. The data slices are shared.
func ToTensors(ts []*Tensor) (tensor.List, error) {
	out := make(tensor.List, len(ts))
	for i, t := range ts {
		shape, n, err := checkShape(t)
		if err != nil {
			return nil, err
		}
		if int64(len(t.GetData())) != n {
			return nil, fmt.Errorf("tensor %q: %d values for shape %v", t.GetName(), len(t.GetData()), t.GetShape())
		}
		out[i] = tensor.Tensor{Name: t.GetName(), Shape: shape, Data: t.GetData()}
	}
	return out, nil
}
