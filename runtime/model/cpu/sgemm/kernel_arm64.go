//go:build !purego

package sgemm

func init() {
	kernel = kernelAsm
	kernelName = "neon"
}

// kernelNEON is the NEON micro-kernel in sgemm_arm64.s (Advanced SIMD is
// part of every arm64 processor).
//
//go:noescape
func kernelNEON(k int, a, b, c *float32, ldc int, load bool)

// kernelAsm checks the panel and tile bounds (blocked calls it with k >= 1) and runs kernelNEON.
func kernelAsm(k int, a, b, c []float32, ldc int, load bool) {
	_ = a[k*mr-1]
	_ = b[k*nr-1]
	_ = c[(mr-1)*ldc+nr-1]
	kernelNEON(k, &a[0], &b[0], &c[0], ldc, load)
}
