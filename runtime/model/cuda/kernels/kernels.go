// Package kernels holds the CUDA backend's kernel source (kernels.cu), the
// CUDA C that runtime/model/cuda compiles with NVRTC once per process for
// the device's compute capability, and the rules it must follow. It has no
// dependencies, so the untagged build can test the source without loading
// any library.
package kernels

import (
	_ "embed"
	"fmt"
	"regexp"
	"strings"
)

// Source is kernels.cu.
//
//go:embed kernels.cu
var Source string

// File is the name NVRTC reports in its diagnostics.
const File = "kernels.cu"

var kernelDecl = regexp.MustCompile(`(?m)^extern "C" __global__ void (\w+)\(`)

// Names lists the kernels, in source order.
func Names() []string {
	var names []string
	for _, m := range kernelDecl.FindAllStringSubmatch(Source, -1) {
		names = append(names, m[1])
	}
	return names
}

// Options are NVRTC's options for compute capability major.minor: PTX for
// that virtual architecture, no fused multiply-adds (the CPU backend rounds
// every product), IEEE division and square roots.
func Options(major, minor int) []string {
	return []string{
		fmt.Sprintf("--gpu-architecture=compute_%d%d", major, minor),
		"--fmad=false", "--prec-div=true", "--prec-sqrt=true", "--ftz=false",
	}
}

// forbidden are the constructs the determinism rules exclude, with why.
var forbidden = []struct{ token, why string }{
	{"atomic", "atomics make a reduction's order, and so its rounding, depend on scheduling"},
	{"__syncthreads", "block-level reductions: every reduction is one thread summing in a fixed order"},
	{"__shared__", "shared-memory reductions: every reduction is one thread summing in a fixed order"},
	{"__shfl", "warp shuffles reduce in a hardware-defined order"},
	{"__threadfence", "cross-block communication has no fixed order"},
	{"fmaf", "an explicit fused multiply-add rounds differently from the CPU backend"},
	{"__fma", "an explicit fused multiply-add rounds differently from the CPU backend"},
	{"curand", "random numbers come from model.DropoutUniform, a pure function"},
	{"#include", "NVRTC runs without the CUDA headers here and on the executor's image"},
}

// Lint checks src against the determinism rules: none of the forbidden
// constructs appear outside comments, and every kernel is declared
// extern "C" __global__ void (unmangled, so the host finds it by name).
func Lint(src string) []error {
	var errs []error
	for n, line := range strings.Split(src, "\n") {
		code, _, _ := strings.Cut(line, "//")
		for _, f := range forbidden {
			if strings.Contains(code, f.token) {
				errs = append(errs, fmt.Errorf("%s:%d: %q: %s", File, n+1, f.token, f.why))
			}
		}
		if strings.Contains(code, "__global__") && !strings.HasPrefix(code, `extern "C" __global__ void `) {
			errs = append(errs, fmt.Errorf("%s:%d: a kernel must be declared extern \"C\" __global__ void at the start of its line", File, n+1))
		}
	}
	if strings.Contains(src, "/*") {
		errs = append(errs, fmt.Errorf("%s: block comments hide code from this lint; use //", File))
	}
	return errs
}
