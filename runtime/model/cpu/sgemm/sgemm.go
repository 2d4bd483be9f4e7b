// Package sgemm multiplies float32 matrices for the CPU backend: one
// general matrix product with optional transposes, a pure-Go reference
// kernel, and vectorised kernels where the processor has them.
package sgemm

// Gemm sets C = op(A)·op(B), or adds op(A)·op(B) to C when accumulate is
// true. op(A) is m×k with A(i,p) = a[i*lda+p], or a[p*lda+i] when transA;
// op(B) is k×n with B(p,j) = b[p*ldb+j], or b[j*ldb+p] when transB; C(i,j)
// is c[i*ldc+j].
//
// C(i,j) depends only on row i of op(A), column j of op(B), k and (when
// accumulating) its previous value: never on m, n, i, j, the leading
// dimensions or alignment, so results are bit-identical however a batch
// is sliced.
func Gemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float32
			for p := 0; p < k; p++ {
				var av, bv float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += av * bv
			}
			if accumulate {
				c[i*ldc+j] += s
			} else {
				c[i*ldc+j] = s
			}
		}
	}
}
