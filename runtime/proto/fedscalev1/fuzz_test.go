package fedscalev1

import (
	"encoding/binary"
	"math"
	"math/big"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// The wire's fuzz targets: whatever bytes a peer sends, decoding and the
// checks a receiver makes before using a message (ToLayout, ToTensors,
// Assembly) return an error or a value within the wire's limits, and
// never panic. `go test` runs the seeds; `go test -fuzz FuzzX` explores.

// fuzzLayout is the model the fuzzed chunks are assembled into: tensors
// spanning a chunk boundary, an empty one and a scalar.
func fuzzLayout() tensor.List {
	return tensor.List{tensor.New("a", 3, 5), tensor.New("empty", 0), tensor.New("b", ChunkValues+7), tensor.New("scalar")}
}

// seedMessages are well-formed and broken messages of either direction.
func seedMessages(f *testing.F) {
	l := fuzzLayout()
	for _, m := range []proto.Message{
		&ExecutorMessage{Body: &ExecutorMessage_Hello{Hello: &Hello{ProtocolVersion: ProtocolVersion, Rank: 1, JobName: "j",
			Data: &DataInfo{ClientSamples: []int64{3, 4, -1}, TestSamples: 10, Classes: 4, Channels: 1, Height: 28, Width: 28}}}},
		&ExecutorMessage{Body: &ExecutorMessage_UpdateChunk{UpdateChunk: &UpdateChunk{TaskId: 1, Offset: 0, Data: []float32{1, 2, 3}}}},
		&ExecutorMessage{Body: &ExecutorMessage_UpdateChunk{UpdateChunk: &UpdateChunk{TaskId: 1, Offset: -5, Data: []float32{float32(math.NaN())}}}},
		&ExecutorMessage{Body: &ExecutorMessage_TrainResult{TrainResult: &TrainResult{Round: 1, TaskId: 1, NumSamples: -3, MovingLoss: math.Inf(1)}}},
		&ExecutorMessage{Body: &ExecutorMessage_EvalResult{EvalResult: &EvalResult{Top1: 10, Count: 3}}},
		&AggregatorMessage{Body: &AggregatorMessage_Model{Model: &Model{Version: 1, Tensors: Layout(l)}}},
		&AggregatorMessage{Body: &AggregatorMessage_Model{Model: &Model{Tensors: []*Tensor{{Name: "w", Shape: []int64{-1, 4}}}}}},
		&AggregatorMessage{Body: &AggregatorMessage_ModelChunk{ModelChunk: &ModelChunk{Version: 1, Offset: 0, Data: make([]float32, 16)}}},
		&AggregatorMessage{Body: &AggregatorMessage_ModelChunk{ModelChunk: &ModelChunk{Version: 1, Offset: math.MaxInt64, Data: []float32{1}}}},
		&AggregatorMessage{Body: &AggregatorMessage_Welcome{Welcome: &Welcome{ProtocolVersion: ProtocolVersion, TimeStamp: "../../x",
			Training: &TrainingConfig{Model: "logistic", BatchSize: -1, LocalSteps: math.MaxInt32}}}},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}) // a length beyond the input
	f.Add([]byte{0x32, 0x05, 0x1a, 0x03, 0x00, 0x00, 0x80})
}

// FuzzExecutorMessage decodes what an executor may send the aggregator
// and puts its update chunks through an assembly.
func FuzzExecutorMessage(f *testing.F) {
	seedMessages(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > MaxMessageBytes {
			return // gRPC refuses it before decoding
		}
		var m ExecutorMessage
		if err := proto.Unmarshal(b, &m); err != nil {
			return
		}
		if c := m.GetUpdateChunk(); c != nil {
			checkAdd(t, NewAssembly(fuzzLayout().ZerosLike()), c.GetOffset(), c.GetData())
		}
	})
}

// FuzzAggregatorMessage decodes what an aggregator may send an executor:
// a model announcement must become a layout within the wire's limits or
// an error, a model chunk must go through an assembly within its bounds.
func FuzzAggregatorMessage(f *testing.F) {
	seedMessages(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > MaxMessageBytes {
			return
		}
		var m AggregatorMessage
		if err := proto.Unmarshal(b, &m); err != nil {
			return
		}
		if md := m.GetModel(); md != nil {
			checkTensors(t, md.GetTensors())
		}
		if c := m.GetModelChunk(); c != nil {
			checkAdd(t, NewAssembly(fuzzLayout().ZerosLike()), c.GetOffset(), c.GetData())
		}
	})
}

// checkTensors puts wire tensors through ToLayout and ToTensors: what
// either accepts has the announced shape, at most 2^40 values a tensor
// (computed without overflow), and for ToTensors exactly that many.
func checkTensors(t *testing.T, ts []*Tensor) {
	t.Helper()
	limit := new(big.Int).Lsh(big.NewInt(1), 40)
	size := func(w *Tensor) *big.Int {
		n := big.NewInt(1)
		for _, d := range w.GetShape() {
			n.Mul(n, big.NewInt(d))
		}
		return n
	}
	if l, err := ToLayout(ts); err == nil {
		for i, w := range ts {
			if n := size(w); n.Sign() < 0 || n.Cmp(limit) > 0 {
				t.Fatalf("ToLayout accepted tensor %q of shape %v: %v values", w.GetName(), w.GetShape(), n)
			}
			if len(l[i].Data) != 0 || len(l[i].Shape) != len(w.GetShape()) {
				t.Fatalf("ToLayout returned %v for %v", l[i], w)
			}
		}
	}
	if l, err := ToTensors(ts); err == nil {
		for i, w := range ts {
			if n := size(w); !n.IsInt64() || n.Int64() != int64(len(w.GetData())) || len(l[i].Data) != len(w.GetData()) {
				t.Fatalf("ToTensors accepted tensor %q of shape %v (%v values) with %d values", w.GetName(), w.GetShape(), n, len(w.GetData()))
			}
		}
	}
}

// checkAdd adds one chunk: it is accepted only within ChunkValues and in
// order, never fills past the layout, and a refused chunk changes nothing.
func checkAdd(t *testing.T, a *Assembly, offset int64, data []float32) {
	t.Helper()
	before, total := a.Progress()
	err := a.Add(offset, data)
	after, _ := a.Progress()
	switch {
	case err != nil && after != before:
		t.Fatalf("a refused chunk moved the assembly from %d to %d", before, after)
	case err == nil && (len(data) == 0 || len(data) > ChunkValues || offset != before):
		t.Fatalf("accepted %d values at %d (filled %d, most %d)", len(data), offset, before, ChunkValues)
	case err == nil && after != before+int64(len(data)):
		t.Fatalf("accepted %d values but filled %d", len(data), after-before)
	case after > total:
		t.Fatalf("filled %d of %d values", after, total)
	}
}

// FuzzAssembly drives one assembly with a run of chunks decoded from the
// input (offset, length and first value per 6 bytes) into a layout whose
// sizes the input's first bytes choose. Whatever the run, what is
// accepted lands in order: once complete, value i is the i-th accepted.
func FuzzAssembly(f *testing.F) {
	f.Add([]byte{2, 3, 0, 0, 2, 0, 1, 0, 0, 2, 3, 0, 2, 0})
	f.Add([]byte{1, 1, 0, 0, 1, 0, 0, 0, 9, 9, 9, 9, 9, 9})
	f.Add([]byte{4, 0, 0, 0, 4, 0, 7, 0, 0, 0, 4, 0, 8, 0, 0, 0, 1, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 2 {
			return
		}
		l := tensor.List{tensor.New("x", int(b[0]%17)), tensor.New("y", int(b[1]%9))}
		a := NewAssembly(l.ZerosLike())
		var want []float32
		for b = b[2:]; len(b) >= 6; b = b[6:] {
			off := int64(int16(binary.LittleEndian.Uint16(b)))
			n := int(binary.LittleEndian.Uint16(b[2:]) % 32)
			data := make([]float32, n)
			for i := range data {
				data[i] = float32(binary.LittleEndian.Uint16(b[4:])) + float32(i)
			}
			before, _ := a.Progress()
			checkAdd(t, a, off, data)
			if after, _ := a.Progress(); after > before {
				want = append(want, data...)
			}
		}
		if !a.Complete() {
			return
		}
		var got []float32
		for _, ts := range a.List() {
			got = append(got, ts.Data...)
		}
		if len(got) != len(want) {
			t.Fatalf("complete with %d values, %d accepted", len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("value %d is %v, the %d-th accepted is %v", i, got[i], i, want[i])
			}
		}
	})
}
