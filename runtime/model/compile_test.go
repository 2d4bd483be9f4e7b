package model

import (
	"strings"
	"testing"
)

// TestCompileConvForms: the convolutions every backend runs, and the one
// error for the others.
func TestCompileConvForms(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    Layer
		want string // "dense", "depthwise", or the error's text
	}{
		{"dense", Layer{Kind: Conv, Groups: 1, In: Shape{3, 8, 8}, Out: Shape{16, 8, 8}}, "dense"},
		{"depthwise", Layer{Kind: Conv, Groups: 16, In: Shape{16, 8, 8}, Out: Shape{16, 8, 8}}, "depthwise"},
		{"depthwise with bias", Layer{Kind: Conv, Name: "c", Groups: 16, Bias: true, In: Shape{16, 8, 8}, Out: Shape{16, 8, 8}}, "layer c: grouped convolution with 16 groups"},
		{"grouped", Layer{Kind: Conv, Name: "g", Groups: 2, In: Shape{16, 8, 8}, Out: Shape{16, 8, 8}}, "layer g: grouped convolution with 2 groups"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Compile(&tc.l, Modules[string]{Leaf: func(_ *Layer, depthwise bool) string {
				if depthwise {
					return "depthwise"
				}
				return "dense"
			}})
			if err != nil {
				got = err.Error()
			}
			if !strings.HasPrefix(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestBatchNormPlane: the smallest plane of any BatchNorm in the tree, and
// the batches that give a channel one value only.
func TestBatchNormPlane(t *testing.T) {
	tree := &Layer{Kind: Seq, Children: []*Layer{
		{Kind: BatchNorm, Out: Shape{8, 4, 4}},
		{Kind: Seq, Children: []*Layer{{Kind: Conv}, {Kind: BatchNorm, Out: Shape{16, 1, 1}}}},
	}}
	if got := BatchNormPlane(tree); got != 1 {
		t.Errorf("BatchNormPlane = %d, want 1", got)
	}
	if got := BatchNormPlane(&Layer{Kind: Seq, Children: []*Layer{{Kind: Linear}}}); got != 0 {
		t.Errorf("without batch norm: %d, want 0", got)
	}
	for _, tc := range []struct {
		plane, n int
		ok       bool
	}{{1, 1, false}, {1, 2, true}, {4, 1, true}, {0, 1, true}} {
		if err := CheckBatchNorm(tc.plane, tc.n); (err == nil) != tc.ok {
			t.Errorf("CheckBatchNorm(%d, %d) = %v, want ok %v", tc.plane, tc.n, err, tc.ok)
		}
	}
}
