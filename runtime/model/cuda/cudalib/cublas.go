package cudalib

import "fmt"

// CUBLAS is a loaded cuBLAS with one handle on the context current at
// Create.
type CUBLAS struct {
	Path   string
	handle uintptr

	create   func(h *uintptr) int32
	destroy  func(h uintptr) int32
	mathMode func(h uintptr, mode int32) int32
	sgemm    func(h uintptr, ta, tb int32, m, n, k int32, alpha *float32, a uint64, lda int32, b uint64, ldb int32, beta *float32, c uint64, ldc int32) int32
}

// cuBLAS constants.
const (
	opN          = 0
	opT          = 1
	pedanticMath = 2 // CUBLAS_PEDANTIC_MATH: plain FP32, no TF32, whatever NVIDIA_TF32_OVERRIDE says
)

// LoadCUBLAS loads cuBLAS and creates a handle in plain FP32 (no TF32):
// call it with the context bound.
func LoadCUBLAS() (*CUBLAS, error) {
	h, path, err := open("cuBLAS", "", CUBLASSonames, "use an nvidia/cuda runtime base image (fsbuild --cuda), which carries cuBLAS")
	if err != nil {
		return nil, err
	}
	c := &CUBLAS{Path: path}
	b := &binder{what: "cuBLAS", path: path, h: h}
	b.bind(&c.create, "cublasCreate_v2")
	b.bind(&c.destroy, "cublasDestroy_v2")
	b.bind(&c.mathMode, "cublasSetMathMode")
	b.bind(&c.sgemm, "cublasSgemm_v2")
	if b.err != nil {
		return nil, b.err
	}
	if err := c.check("cublasCreate", c.create(&c.handle)); err != nil {
		return nil, err
	}
	if err := c.check("cublasSetMathMode(CUBLAS_PEDANTIC_MATH)", c.mathMode(c.handle, pedanticMath)); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *CUBLAS) check(call string, code int32) error {
	if code == 0 {
		return nil
	}
	return fmt.Errorf("cuBLAS %s: %s: status %d", c.Path, call, code)
}

// Gemm is runtime/model/cpu/sgemm.Gemm's row-major product on device
// memory: C = op(A)·op(B) (+ C when acc). cuBLAS is column-major, so it
// computes Cᵀ = op(B)ᵀ·op(A)ᵀ, which is the same memory.
func (c *CUBLAS) Gemm(transA, transB bool, m, n, k int, a uint64, lda int, b uint64, ldb int, out uint64, ldc int, acc bool) error {
	alpha, beta := float32(1), float32(0)
	if acc {
		beta = 1
	}
	op := func(t bool) int32 {
		if t {
			return opT
		}
		return opN
	}
	return c.check("cublasSgemm", c.sgemm(c.handle, op(transB), op(transA), int32(n), int32(m), int32(k), &alpha, b, int32(ldb), a, int32(lda), &beta, out, int32(ldc)))
}

// Close destroys the handle.
func (c *CUBLAS) Close() error { return c.check("cublasDestroy", c.destroy(c.handle)) }
