package fedscalev1

import (
	"strings"
	"testing"

	"github.com/fedscale/fedscale-go/runtime/tensor"
)

func TestTensorRoundTrip(t *testing.T) {
	in := tensor.List{{Name: "fc.weight", Shape: []int{2, 3}, Data: []float32{1, 2, 3, 4, 5, 6}}, {Name: "fc.bias", Shape: []int{2}, Data: []float32{-1, 1}}}
	out, err := ToTensors(FromTensors(in))
	if err != nil {
		t.Fatal(err)
	}
	if err := in.CheckCompatible(out); err != nil {
		t.Fatal(err)
	}
	for i := range in {
		for j := range in[i].Data {
			if in[i].Data[j] != out[i].Data[j] {
				t.Fatalf("%s[%d] = %v, want %v", in[i].Name, j, out[i].Data[j], in[i].Data[j])
			}
		}
	}
}

func TestToTensorsRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   *Tensor
		want string
	}{
		{"short data", &Tensor{Name: "w", Shape: []int64{2, 2}, Data: []float32{1}}, "1 values for shape [2 2]"},
		{"negative dim", &Tensor{Name: "w", Shape: []int64{-1}}, "invalid dimension -1"},
		{"huge shape", &Tensor{Name: "w", Shape: []int64{1 << 30, 1 << 30, 4}}, "too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ToTensors([]*Tensor{tc.in})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
