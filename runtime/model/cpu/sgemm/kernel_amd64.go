//go:build !purego

package sgemm

func init() {
	if hasAVX2FMA() {
		kernel = kernelAsm
		kernelName = "avx2"
	}
}

// kernelAsm checks the panel and tile bounds (blocked calls it with k >= 1) and runs kernelAVX2.
func kernelAsm(k int, a, b, c []float32, ldc int, load bool) {
	_ = a[k*mr-1]
	_ = b[k*nr-1]
	_ = c[(mr-1)*ldc+nr-1]
	kernelAVX2(k, &a[0], &b[0], &c[0], ldc, load)
}

// hasAVX2FMA reports whether the processor has AVX2 and FMA and the OS
// saves the YMM registers.
func hasAVX2FMA() bool {
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const (
		fma     = 1 << 12
		osxsave = 1 << 27
		avx     = 1 << 28
	)
	if ecx1&(fma|osxsave|avx) != fma|osxsave|avx {
		return false
	}
	if xcr0, _ := xgetbv(); xcr0&6 != 6 { // XMM and YMM state
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	return ebx7&(1<<5) != 0 // AVX2
}
