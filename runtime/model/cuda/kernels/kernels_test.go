package kernels

import (
	"strings"
	"testing"
)

// The shipped source follows the rules, and the lint catches each one.
func TestLint(t *testing.T) {
	for _, err := range Lint(Source) {
		t.Error(err)
	}
	if len(Names()) < 30 {
		t.Errorf("%d kernels found; the declaration pattern no longer matches kernels.cu", len(Names()))
	}
	for _, tc := range []struct{ src, want string }{
		{"extern \"C\" __global__ void k(float* s) { atomicAdd(s, 1.0f); }", "atomic"},
		{"extern \"C\" __global__ void k() { __syncthreads(); }", "__syncthreads"},
		{"extern \"C\" __global__ void k() { __shared__ float b[32]; }", "__shared__"},
		{"extern \"C\" __global__ void k(float v) { v = __shfl_down_sync(~0u, v, 1); }", "__shfl"},
		{"extern \"C\" __global__ void k(float* y) { y[0] = fmaf(y[0], 2, 1); }", "fmaf"},
		{"__global__ void k() {}", "extern \"C\""},
		{"#include <cuda_fp16.h>", "#include"},
		{"/* x */", "block comments"},
	} {
		errs := Lint(tc.src)
		if len(errs) == 0 || !strings.Contains(errs[0].Error(), tc.want) {
			t.Errorf("Lint(%q) = %v, want an error about %s", tc.src, errs, tc.want)
		}
	}
	if errs := Lint("// atomicAdd is forbidden\nextern \"C\" __global__ void k() {}"); len(errs) != 0 {
		t.Errorf("a comment or a plain kernel flagged: %v", errs)
	}
}
