package executor

import (
	"runtime"
	"strings"
	"testing"

	"github.com/fedscale/fedscale-go/runtime/model"
	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// At most GOMAXPROCS trainers compute, whatever the task slots.
func TestComputeSlots(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	for _, tc := range []struct{ slots, want int }{{1, 1}, {3, 3}, {4, 4}, {16, 4}, {0, 1}} {
		if got := computeSlots(tc.slots); got != tc.want {
			t.Errorf("computeSlots(%d) with GOMAXPROCS 4 = %d, want %d", tc.slots, got, tc.want)
		}
	}
}

// A compute slot copies each task's global model into one buffer, reused
// while the model keeps its shape and replaced when it changes.
func TestComputeSlotLoad(t *testing.T) {
	a := tensor.List{{Name: "w", Shape: []int{2, 2}, Data: []float32{1, 2, 3, 4}}, {Name: "b", Shape: []int{2}, Data: []float32{5, 6}}}
	var s computeSlot
	p := s.load(a)
	p[0].Data[0] = 99 // training writes the slot's copy, never the global model
	if a[0].Data[0] != 1 {
		t.Fatal("load shares memory with the global model")
	}
	b := a.Clone()
	b[1].Data[1] = 7
	q := s.load(b)
	if &q[0].Data[0] != &p[0].Data[0] {
		t.Error("a model of the same shape was loaded into a new buffer")
	}
	if q[0].Data[0] != 1 || q[1].Data[1] != 7 {
		t.Errorf("loaded %v, want the second model's values", q)
	}
	c := tensor.List{{Name: "w", Shape: []int{3}, Data: []float32{8, 9, 10}}}
	if r := s.load(c); len(r) != 1 || r[0].Data[2] != 10 {
		t.Errorf("a model of another shape loaded as %v", r)
	}
}

func TestGCPercent(t *testing.T) {
	for _, tc := range []struct {
		bytes    int64
		trainers int
		want     int
	}{
		{0, 1, 100},
		{15_700, 2, 100},       // logistic on MNIST
		{44_900_000, 2, 20},    // resnet18, 62 classes: 225 MB of models
		{44_900_000, 1, 24},    // one trainer: 135 MB
		{2_000_000, 2, 100},    // a small CNN: 10 MB of models
		{10_000_000, 2, 67},    // 50 MB of models
		{-1, 2, 100},           // nonsense is Go's default
		{1 << 40, 1 << 10, 20}, // no overflow at the extremes
	} {
		if got := GCPercent(tc.bytes, tc.trainers); got != tc.want {
			t.Errorf("GCPercent(%d, %d) = %d, want %d", tc.bytes, tc.trainers, got, tc.want)
		}
	}
}

// A negative slot count is an error, not silently one slot.
func TestNegativeSlots(t *testing.T) {
	_, err := New(Options{Rank: 1, Slots: -5, Backend: func(model.Spec) (model.Trainer, error) { return nil, nil }})
	if err == nil || !strings.Contains(err.Error(), "slots: at least 1 task at a time, got -5") {
		t.Fatalf("New(Slots: -5) = %v", err)
	}
}
