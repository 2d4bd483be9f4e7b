package fedscalev1

import (
	"strings"
	"testing"

	"github.com/fedscale/fedscale-go/runtime/tensor"
)

func TestChunksRoundTrip(t *testing.T) {
	// Sizes around the chunk boundary, an empty tensor and a scalar.
	sizes := []int{3, 0, ChunkValues, 1, 2*ChunkValues + 5, ChunkValues - 1}
	in := make(tensor.List, len(sizes))
	v := float32(0)
	for i, n := range sizes {
		in[i] = tensor.New("t"+string(rune('a'+i)), n)
		for j := range in[i].Data {
			v++
			in[i].Data[j] = v
		}
	}
	layout, err := ToLayout(Layout(in))
	if err != nil {
		t.Fatal(err)
	}
	a := NewAssembly(layout.ZerosLike())
	chunks := 0
	err = Chunks(in, func(off int64, d []float32) error {
		chunks++
		if len(d) > ChunkValues {
			t.Fatalf("chunk of %d values", len(d))
		}
		return a.Add(off, d)
	})
	if err != nil {
		t.Fatal(err)
	}
	if !a.Complete() {
		f, n := a.Progress()
		t.Fatalf("incomplete: %d of %d", f, n)
	}
	if want := 1 + 1 + 1 + 3 + 1; chunks != want {
		t.Errorf("%d chunks, want %d (one per tensor piece)", chunks, want)
	}
	out := a.List()
	for i := range in {
		for j := range in[i].Data {
			if in[i].Data[j] != out[i].Data[j] {
				t.Fatalf("%s[%d] = %v, want %v", in[i].Name, j, out[i].Data[j], in[i].Data[j])
			}
		}
	}
}

// A chunk may span tensors: the receiver does not rely on the sender's
// piece boundaries.
func TestAssemblySpansTensors(t *testing.T) {
	a := NewAssembly(tensor.List{tensor.New("a", 2), tensor.New("b", 0), tensor.New("c", 3)})
	if err := a.Add(0, []float32{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if err := a.Add(3, []float32{4, 5}); err != nil {
		t.Fatal(err)
	}
	if !a.Complete() || a.List()[2].Data[2] != 5 || a.List()[0].Data[1] != 2 {
		t.Fatalf("got %v", a.List())
	}
}

func TestAssemblyRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		offset int64
		data   []float32
		want   string
	}{
		{"empty", 0, nil, "empty chunk"},
		{"gap", 1, []float32{1}, "chunk at value 1, expected 0"},
		{"negative offset", -1, []float32{1}, "chunk at value -1"},
		{"overrun", 0, make([]float32, 5), "overruns the model's 4 values"},
		{"oversized", 0, make([]float32, ChunkValues+1), "the most is"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := NewAssembly(tensor.List{tensor.New("w", 2, 2)})
			err := a.Add(tc.offset, tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
			if f, _ := a.Progress(); f != 0 {
				t.Errorf("a refused chunk filled %d values", f)
			}
		})
	}
}

func TestToLayoutRejectsValues(t *testing.T) {
	_, err := ToLayout([]*Tensor{{Name: "w", Shape: []int64{1}, Data: []float32{1}}})
	if err == nil || !strings.Contains(err.Error(), "carries no values") {
		t.Fatalf("got %v", err)
	}
	if _, err := ToLayout([]*Tensor{{Name: "w", Shape: []int64{-2}}}); err == nil {
		t.Fatal("negative dimension accepted")
	}
}

// A shape whose element count wraps around int64 is too large, not empty.
func TestShapeOverflow(t *testing.T) {
	for _, shape := range [][]int64{{1 << 20, 1 << 20, 1 << 31}, {1 << 31, 1 << 31, 1 << 31, 1 << 31}, {1 << 31, 1 << 10}} {
		if _, _, err := checkShape(&Tensor{Name: "w", Shape: shape}); err == nil || !strings.Contains(err.Error(), "too large") {
			t.Errorf("shape %v: %v, want too large", shape, err)
		}
	}
	if _, n, err := checkShape(&Tensor{Name: "w", Shape: []int64{0, 1 << 31, 1 << 31}}); err != nil || n != 0 {
		t.Errorf("a zero dimension: %d, %v", n, err)
	}
}
