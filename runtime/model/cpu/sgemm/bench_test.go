package sgemm

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchShapes are the products of the CPU backend on ResNet-18, 3×32×32
// inputs, batch 20, channel-major: forward convolutions
// C[oc, n*hw] = W[oc, c*kh*kw]·col[c*kh*kw, n*hw], weight gradients
// dW = dY·colᵀ (transB), input gradients dcol = Wᵀ·dY (transA), and the
// fully connected layer.
var benchShapes = []struct {
	name           string
	transA, transB bool
	m, n, k        int
}{
	{"conv1_fwd", false, false, 64, 5120, 147},
	{"layer1_fwd", false, false, 64, 1280, 576},
	{"layer2_fwd", false, false, 128, 320, 1152},
	{"layer3_fwd", false, false, 256, 80, 2304},
	{"layer4_fwd", false, false, 512, 20, 4608},
	{"layer1_dW", false, true, 64, 576, 1280},
	{"layer3_dW", false, true, 256, 2304, 80},
	{"layer1_dcol", true, false, 576, 1280, 64},
	{"layer3_dcol", true, false, 2304, 80, 256},
	{"layer4_dW", false, true, 512, 4608, 20},
	{"layer4_dcol", true, false, 4608, 20, 512},
	{"fc", false, true, 20, 62, 512},
	{"fc_small", false, false, 62, 20, 512},
}

func BenchmarkGemm(b *testing.B) {
	kernels := []struct {
		name string
		kern microKernel
	}{{kernelName, kernel}, {"go", kernelGo}}
	if kernelName == "go" {
		kernels = kernels[:1]
	}
	for _, sh := range benchShapes {
		r := rand.New(rand.NewPCG(1, 1))
		a, lda, bb, ldb, c, ldc := operands(r, sh.transA, sh.transB, sh.m, sh.n, sh.k, 0)
		flops := 2 * float64(sh.m) * float64(sh.n) * float64(sh.k)
		for _, kn := range kernels {
			b.Run(fmt.Sprintf("%s/%dx%dx%d/%s", sh.name, sh.m, sh.n, sh.k, kn.name), func(b *testing.B) {
				for b.Loop() {
					gemm(kn.kern, sh.transA, sh.transB, sh.m, sh.n, sh.k, a, lda, bb, ldb, c, ldc, false)
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
		b.Run(fmt.Sprintf("%s/%dx%dx%d/naive", sh.name, sh.m, sh.n, sh.k), func(b *testing.B) {
			for b.Loop() {
				naiveGemm(sh.transA, sh.transB, sh.m, sh.n, sh.k, a, lda, bb, ldb, c, ldc)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// naiveGemm is the triple loop the package started from, for comparison.
func naiveGemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float32
			for p := 0; p < k; p++ {
				s += at(a, transA, lda, i, p) * at(b, transB, ldb, p, j)
			}
			c[i*ldc+j] = s
		}
	}
}
