package model

import (
	"testing"

	"github.com/fedscale/fedscale-go/runtime/tensor"
)

func TestMeasure(t *testing.T) {
	for _, tc := range []struct {
		spec              Spec
		params, minActive int
	}{
		// One Linear layer: 784*10 weights + 10 biases; its output and the
		// network's (the same 10 values) are the activations.
		{Spec{Name: Logistic, Channels: 1, Height: 28, Width: 28, Classes: 10}, 7850, 20},
		// torchvision's ResNet-18 with 10 classes: 11,181,642 parameters
		// and 9,620 buffer values (BatchNorm's running statistics and
		// counters); conv1's output alone is 64x16x16.
		{Spec{Name: ResNet18, Channels: 3, Height: 32, Width: 32, Classes: 10}, 11181642 + 9620, 64 * 16 * 16},
	} {
		f, err := Measure(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		layout, err := Layout(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, p := range layout {
			n += tensor.Size(p.Shape)
		}
		if f.Params != n || f.Params != tc.params {
			t.Errorf("%s: %d parameters, want %d (Layout: %d)", tc.spec, f.Params, tc.params, n)
		}
		if f.Activations < tc.minActive {
			t.Errorf("%s: %d activations per sample, want at least %d", tc.spec, f.Activations, tc.minActive)
		}
	}
	if _, err := Measure(Spec{Name: "vgg", Channels: 3, Height: 32, Width: 32, Classes: 10}); err == nil {
		t.Error("an unknown model was measured")
	}
}

func TestProcessMemory(t *testing.T) {
	f := Footprint{Params: 1 << 20, Activations: 1000}
	agg, exec := ProcessMemory(f, false, 32), ProcessMemory(f, true, 32)
	if want := int64(baseBytes + paramCopies*4<<20); agg != want {
		t.Errorf("aggregator: %d bytes, want %d", agg, want)
	}
	if want := agg + 2*4*32*1000; exec != want {
		t.Errorf("executor: %d bytes, want %d", exec, want)
	}
	if ProcessMemory(f, true, 64) <= exec {
		t.Error("a larger batch needs no more memory")
	}
}
