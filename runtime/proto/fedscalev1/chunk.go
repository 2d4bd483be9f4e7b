package fedscalev1

import (
	"errors"
	"fmt"

	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// ChunkValues is the most values one ModelChunk or UpdateChunk carries
// (1 MiB of float32): large enough that framing costs nothing, small
// enough that a message buffer is a rounding error beside the model it
// belongs to, on both ends of the stream.
const ChunkValues = 1 << 18

// MaxMessageBytes bounds one message on the wire, either way. Models and
// updates travel in chunks of ChunkValues; the largest message is an
// executor's Hello, whose data description holds every client's sample
// count (a few bytes each: 16 MiB is millions of clients).
const MaxMessageBytes = 16 << 20

// MaxSlots bounds the tasks an executor may ask to run at once (Hello's
// slots): the aggregator refuses a Hello outside 1..MaxSlots, and an
// executor refuses to start with more.
const MaxSlots = 1024

// MaxIncarnationBytes bounds Hello's incarnation, an executor process's
// id that the aggregator logs.
const MaxIncarnationBytes = 64

// Layout returns wire tensors with l's names and shapes and no values: the
// tensors of a Model announcement.
func Layout(l tensor.List) []*Tensor {
	out := FromTensors(l)
	for _, t := range out {
		t.Data = nil
	}
	return out
}

// ToLayout checks wire tensors that announce a model (names and shapes, no
// values) and returns them as tensors without data.
func ToLayout(ts []*Tensor) (tensor.List, error) {
	out := make(tensor.List, len(ts))
	for i, t := range ts {
		shape, _, err := checkShape(t)
		if err != nil {
			return nil, err
		}
		if len(t.GetData()) != 0 {
			return nil, fmt.Errorf("tensor %q: a model announcement carries no values, got %d", t.GetName(), len(t.GetData()))
		}
		out[i] = tensor.Tensor{Name: t.GetName(), Shape: shape}
	}
	return out, nil
}

// Chunks calls send for consecutive pieces of l's values in order, each
// inside one tensor and at most ChunkValues long, with the offset of its
// first value in the concatenation of all of them. The pieces share l's
// memory. It stops at the first error send returns.
func Chunks(l tensor.List, send func(offset int64, data []float32) error) error {
	var off int64
	for _, t := range l {
		for lo := 0; lo < len(t.Data); lo += ChunkValues {
			d := t.Data[lo:min(lo+ChunkValues, len(t.Data))]
			if err := send(off, d); err != nil {
				return err
			}
			off += int64(len(d))
		}
	}
	return nil
}

// Assembly fills a tensor list with the values of chunks that arrive in
// order. It never grows the list: a peer that sends more values than the
// layout holds, out of order or in oversized chunks gets an error.
type Assembly struct {
	l      tensor.List
	total  int64
	filled int64
	t, i   int // where the next value goes: tensor t, index i
}

// NewAssembly returns an assembly that writes into dst, whose tensors must
// have their data allocated.
func NewAssembly(dst tensor.List) *Assembly {
	a := &Assembly{l: dst}
	for _, t := range dst {
		a.total += int64(len(t.Data))
	}
	a.skipEmpty()
	return a
}

// Add copies one chunk's values into place.
func (a *Assembly) Add(offset int64, data []float32) error {
	switch {
	case len(data) == 0:
		return errors.New("empty chunk")
	case len(data) > ChunkValues:
		return fmt.Errorf("chunk of %d values, the most is %d", len(data), ChunkValues)
	case offset != a.filled:
		return fmt.Errorf("chunk at value %d, expected %d (chunks arrive in order)", offset, a.filled)
	case int64(len(data)) > a.total-a.filled:
		return fmt.Errorf("chunk of %d values at %d overruns the model's %d values", len(data), offset, a.total)
	}
	for len(data) > 0 {
		n := copy(a.l[a.t].Data[a.i:], data)
		data = data[n:]
		a.i += n
		a.filled += int64(n)
		a.skipEmpty()
	}
	return nil
}

// skipEmpty moves the write position past full (and empty) tensors.
func (a *Assembly) skipEmpty() {
	for a.t < len(a.l) && a.i == len(a.l[a.t].Data) {
		a.t++
		a.i = 0
	}
}

// Complete reports whether every value has arrived.
func (a *Assembly) Complete() bool { return a.filled == a.total }

// Progress is how many of how many values have arrived.
func (a *Assembly) Progress() (filled, total int64) { return a.filled, a.total }

// List returns the list being filled.
func (a *Assembly) List() tensor.List { return a.l }
