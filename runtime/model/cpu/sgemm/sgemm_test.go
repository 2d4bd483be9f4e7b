package sgemm

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
)

// matrix returns rows×cols values in [-1,1) with row stride ld (the
// padding holds NaN, which must never reach a result).
func matrix(r *rand.Rand, rows, cols, ld int) []float32 {
	x := make([]float32, max(rows*ld, 1))
	for i := range x {
		x[i] = float32(math.NaN())
	}
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			x[i*ld+j] = float32(r.Float64()*2 - 1)
		}
	}
	return x
}

// operands draws op(A), op(B) and C for a call of the given shape, with
// leading dimensions padded by pad.
func operands(r *rand.Rand, transA, transB bool, m, n, k, pad int) (a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if transA {
		lda = m + pad
		a = matrix(r, k, m, lda)
	} else {
		lda = k + pad
		a = matrix(r, m, k, lda)
	}
	if transB {
		ldb = k + pad
		b = matrix(r, n, k, ldb)
	} else {
		ldb = n + pad
		b = matrix(r, k, n, ldb)
	}
	ldc = n + pad
	c = matrix(r, m, n, ldc)
	return
}

func at(x []float32, trans bool, ld, i, j int) float32 {
	if trans {
		return x[j*ld+i]
	}
	return x[i*ld+j]
}

// naive returns op(A)·op(B) (+ C) in float64 and, per element, the sum of
// the magnitudes of its terms, which scales the rounding error.
func naive(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool) (want, scale []float64) {
	want = make([]float64, m*n)
	scale = make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, abs float64
			if accumulate {
				s = float64(c[i*ldc+j])
				abs = math.Abs(s)
			}
			for p := 0; p < k; p++ {
				t := float64(at(a, transA, lda, i, p)) * float64(at(b, transB, ldb, p, j))
				s += t
				abs += math.Abs(t)
			}
			want[i*n+j], scale[i*n+j] = s, abs
		}
	}
	return want, scale
}

var shapes = []struct{ m, n, k int }{
	{1, 1, 1}, {1, 1, 7}, {1, 17, 1}, {5, 1, 3}, {6, 16, 1}, {6, 16, 4}, {7, 17, 5},
	{2, 3, 0}, {0, 4, 3}, {4, 0, 3},
	{13, 31, 37}, {12, 32, 64}, {23, 19, 257}, {mcBlock + 1, nr*3 + 5, kcBlock*2 + 3},
	{62, 20, 512}, {3, ncBlock + 21, 11}, {mr*3 - 1, 40, kcBlock},
}

func TestGemmMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	kernels := []struct {
		name string
		kern microKernel
	}{{"go", kernelGo}, {kernelName, kernel}}
	for _, sh := range shapes {
		for _, transA := range []bool{false, true} {
			for _, transB := range []bool{false, true} {
				for _, acc := range []bool{false, true} {
					for _, pad := range []int{0, 3} {
						name := fmt.Sprintf("%dx%dx%d/tA=%v/tB=%v/acc=%v/pad=%d", sh.m, sh.n, sh.k, transA, transB, acc, pad)
						a, lda, b, ldb, c0, ldc := operands(r, transA, transB, sh.m, sh.n, sh.k, pad)
						want, scale := naive(transA, transB, sh.m, sh.n, sh.k, a, lda, b, ldb, c0, ldc, acc)
						for _, kn := range kernels {
							c := append([]float32(nil), c0...)
							gemm(kn.kern, transA, transB, sh.m, sh.n, sh.k, a, lda, b, ldb, c, ldc, acc)
							tol := 1e-5 * math.Sqrt(float64(sh.k)+1)
							for i := 0; i < sh.m; i++ {
								for j := 0; j < sh.n; j++ {
									got := float64(c[i*ldc+j])
									if d := math.Abs(got - want[i*sh.n+j]); !(d <= tol*scale[i*sh.n+j]+1e-30) {
										t.Fatalf("%s kernel %s: C(%d,%d) = %g, want %g (scale %g)", name, kn.name, i, j, got, want[i*sh.n+j], scale[i*sh.n+j])
									}
								}
								for j := sh.n; j < ldc && i*ldc+j < len(c); j++ {
									if !math.IsNaN(float64(c[i*ldc+j])) {
										t.Fatalf("%s kernel %s: wrote padding C[%d]", name, kn.name, i*ldc+j)
									}
								}
							}
						}
					}
				}
			}
		}
	}
}

// TestKernelsBitIdentical checks that the selected kernel and the pure-Go
// kernel give the same bits (both follow the documented fma chain).
func TestKernelsBitIdentical(t *testing.T) {
	if kernelName == "go" {
		t.Skip("only the pure-Go kernel is available here")
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, sh := range append(shapes, struct{ m, n, k int }{64, 100, 600}) {
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			for _, acc := range []bool{false, true} {
				a, lda, b, ldb, c0, ldc := operands(r, tr[0], tr[1], sh.m, sh.n, sh.k, 1)
				c1 := append([]float32(nil), c0...)
				c2 := append([]float32(nil), c0...)
				gemm(kernel, tr[0], tr[1], sh.m, sh.n, sh.k, a, lda, b, ldb, c1, ldc, acc)
				gemm(kernelGo, tr[0], tr[1], sh.m, sh.n, sh.k, a, lda, b, ldb, c2, ldc, acc)
				if i := firstDiff(c1, c2); i >= 0 {
					t.Fatalf("%v %v acc=%v: %s and go differ at %d: %g vs %g", sh, tr, acc, kernelName, i, c1[i], c2[i])
				}
			}
		}
	}
}

// firstDiff returns the first index where x and y differ in bits, or -1.
func firstDiff(x, y []float32) int {
	for i := range x {
		if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
			return i
		}
	}
	return -1
}

// TestSliceInvariance checks the contract: computing any block, row or
// column of a product, with other leading dimensions and offsets, gives
// the same bits as the whole product.
func TestSliceInvariance(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const m, n, k = 50, 70, 2*kcBlock + 37
	for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
		transA, transB := tr[0], tr[1]
		a, lda, b, ldb, c0, ldc := operands(r, transA, transB, m, n, k, 0)
		for _, acc := range []bool{false, true} {
			full := append([]float32(nil), c0...)
			Gemm(transA, transB, m, n, k, a, lda, b, ldb, full, ldc, acc)
			blocks := []struct{ i0, j0, mb, nb, ldc, off int }{
				{0, 0, 1, 1, 1, 0}, {7, 9, 1, n - 9, n + 5, 3}, {0, 13, m, 1, 1, 1},
				{11, 3, 17, 29, 40, 2}, {m - 1, n - 1, 1, 1, 3, 0}, {5, 0, m - 5, n, n, 7},
				{1, 1, 6, 16, 16, 0}, {0, 0, m, 20, 20, 0}, {3, 2, m - 3, 31, 31, 4}, {2, 5, 7, 17, 33, 5},
			}
			for _, bl := range blocks {
				// op(A) rows i0.., op(B) columns j0.. as sub-slices.
				var as, bs []float32
				if transA {
					as = a[bl.i0:]
				} else {
					as = a[bl.i0*lda:]
				}
				if transB {
					bs = b[bl.j0*ldb:]
				} else {
					bs = b[bl.j0:]
				}
				c := make([]float32, bl.off+bl.mb*bl.ldc)
				for i := 0; i < bl.mb; i++ {
					copy(c[bl.off+i*bl.ldc:bl.off+i*bl.ldc+bl.nb], c0[(bl.i0+i)*ldc+bl.j0:])
				}
				Gemm(transA, transB, bl.mb, bl.nb, k, as, lda, bs, ldb, c[bl.off:], bl.ldc, acc)
				for i := 0; i < bl.mb; i++ {
					for j := 0; j < bl.nb; j++ {
						got, want := c[bl.off+i*bl.ldc+j], full[(bl.i0+i)*ldc+bl.j0+j]
						if math.Float32bits(got) != math.Float32bits(want) {
							t.Fatalf("tA=%v tB=%v acc=%v block %+v: C(%d,%d) = %g, whole product has %g", transA, transB, acc, bl, bl.i0+i, bl.j0+j, got, want)
						}
					}
				}
			}
		}
	}
}

// TestDeterministic runs the same product twice with poisoned pooled
// buffers in between.
func TestDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const m, n, k = 37, 45, 300
	a, lda, b, ldb, _, ldc := operands(r, false, true, m, n, k, 0)
	c1 := make([]float32, m*ldc)
	Gemm(false, true, m, n, k, a, lda, b, ldb, c1, ldc, false)
	ws := workspaces.Get().(*workspace)
	for i := range ws.a {
		ws.a[i] = float32(math.NaN())
	}
	for i := range ws.b {
		ws.b[i] = float32(math.Inf(1))
	}
	for i := range ws.tile {
		ws.tile[i] = 7
	}
	workspaces.Put(ws)
	c2 := make([]float32, m*ldc)
	Gemm(false, true, m, n, k, a, lda, b, ldb, c2, ldc, false)
	if i := firstDiff(c1, c2); i >= 0 {
		t.Fatalf("runs differ at %d: %g vs %g", i, c1[i], c2[i])
	}
}

func TestZeroK(t *testing.T) {
	c := []float32{1, 2, 3, 4, 5}
	Gemm(false, false, 2, 2, 0, nil, 1, nil, 2, c, 3, true)
	if c[0] != 1 || c[4] != 5 {
		t.Fatalf("accumulate with k=0 changed C: %v", c)
	}
	Gemm(false, false, 2, 2, 0, nil, 1, nil, 2, c, 3, false)
	if want := []float32{0, 0, 3, 0, 0}; fmt.Sprint(c) != fmt.Sprint(want) {
		t.Fatalf("k=0 without accumulate: C = %v, want %v", c, want)
	}
}

func TestArgumentChecks(t *testing.T) {
	x := make([]float32, 12)
	tests := []struct {
		name string
		call func()
		want string
	}{
		{"negative m", func() { Gemm(false, false, -1, 2, 2, x, 2, x, 2, x, 2, false) }, "negative dimension"},
		{"short a", func() { Gemm(false, false, 4, 2, 4, x, 4, x, 2, x, 2, false) }, "a has 12 elements, needs 16"},
		{"small lda", func() { Gemm(true, false, 3, 2, 2, x, 2, x, 2, x, 2, false) }, "leading dimension of a is 2, below 3"},
		{"short b transposed", func() { Gemm(false, true, 2, 5, 3, x, 3, x, 3, x, 5, false) }, "b has 12 elements, needs 15"},
		{"short c", func() { Gemm(false, false, 3, 4, 2, x, 2, x, 4, x, 5, false) }, "c has 12 elements, needs 14"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				msg := fmt.Sprint(recover())
				if !strings.Contains(msg, tt.want) {
					t.Fatalf("panic %q, want it to contain %q", msg, tt.want)
				}
			}()
			tt.call()
		})
	}
}

// exactFMA32 is x*y+z rounded once to float32, computed with big.Float.
func exactFMA32(x, y, z float32) float32 {
	p := new(big.Float).SetPrec(2000).SetFloat64(float64(x))
	p.Mul(p, new(big.Float).SetFloat64(float64(y)))
	p.Add(p, new(big.Float).SetFloat64(float64(z)))
	f, _ := p.Float32()
	return f
}

func TestFMA32(t *testing.T) {
	type tc struct{ x, y, z float32 }
	cases := []tc{
		// 24929*673 = 2^24+1, a float32 tie; the tiny z decides it, which a
		// float64 sum rounded again to float32 gets wrong.
		{24929, 673, 0x1p-30}, {24929, 673, -0x1p-30}, {-24929, 673, 0x1p-30},
		{1, 1, -1}, {0x1p-100, 0x1p-60, 0}, {0x1p-70, 0x1p-70, 0x1p-149}, {3, 0x1p-149, 0x1p-149},
		{math.MaxFloat32, 2, -math.MaxFloat32}, {1.5, 1.5, 0x1p-126},
	}
	r := rand.New(rand.NewPCG(9, 10))
	for range 200000 {
		x := math.Float32frombits(r.Uint32() & 0x3fffffff)
		y := math.Float32frombits(r.Uint32()&0x3fffffff) * float32(1-2*float64(r.IntN(2)))
		var z float32
		switch r.IntN(4) {
		case 0: // heavy cancellation
			z = -(x * y) * (1 + float32(r.IntN(5)-2)*0x1p-23)
		case 1: // z far below the product
			z = x * y * float32(math.Ldexp(r.Float64(), -20-r.IntN(40)))
		case 2: // subnormal range
			x, y = x*0x1p-60, y*0x1p-60
			z = float32(math.Ldexp(r.Float64()-0.5, -126-r.IntN(20)))
		default:
			z = math.Float32frombits(r.Uint32() & 0xbfffffff)
		}
		cases = append(cases, tc{x, y, z})
	}
	for _, c := range cases {
		if math.IsInf(float64(c.x*c.y), 0) || math.IsNaN(float64(c.z)) {
			continue
		}
		got, want := fma32(c.x, c.y, c.z), exactFMA32(c.x, c.y, c.z)
		if math.Float32bits(got) != math.Float32bits(want) && !(got == 0 && want == 0) {
			t.Fatalf("fma32(%g, %g, %g) = %g (%#x), want %g (%#x)", c.x, c.y, c.z, got, math.Float32bits(got), want, math.Float32bits(want))
		}
	}
}

func FuzzGemm(f *testing.F) {
	f.Add(uint64(1), uint8(7), uint8(17), uint16(300), uint8(0), uint8(2), uint8(3))
	f.Add(uint64(2), uint8(1), uint8(1), uint16(1), uint8(3), uint8(0), uint8(0))
	f.Add(uint64(3), uint8(13), uint8(40), uint16(0), uint8(1), uint8(5), uint8(9))
	f.Fuzz(func(t *testing.T, seed uint64, m8, n8 uint8, k16 uint16, flags, sub, pad uint8) {
		m, n, k := int(m8%40)+1, int(n8%70)+1, int(k16%700)
		transA, transB, acc := flags&1 != 0, flags&2 != 0, flags&4 != 0
		r := rand.New(rand.NewPCG(seed, 11))
		a, lda, b, ldb, c0, ldc := operands(r, transA, transB, m, n, k, int(pad%5))
		full := append([]float32(nil), c0...)
		Gemm(transA, transB, m, n, k, a, lda, b, ldb, full, ldc, acc)
		ref := append([]float32(nil), c0...)
		gemm(kernelGo, transA, transB, m, n, k, a, lda, b, ldb, ref, ldc, acc)
		if i := firstDiff(full, ref); i >= 0 {
			t.Fatalf("%s and go kernels differ at %d", kernelName, i)
		}
		// One row i0 and the columns from j0 on, into a C of stride 1 or nb.
		i0, j0 := int(sub)%m, int(sub/3)%n
		nb := n - j0
		tail := func(x []float32, off int) []float32 {
			if k == 0 {
				return nil
			}
			return x[off:]
		}
		aOff, bOff := i0*lda, j0
		if transA {
			aOff = i0
		}
		if transB {
			bOff = j0 * ldb
		}
		as, bs := tail(a, aOff), tail(b, bOff)
		c := append([]float32(nil), c0[i0*ldc+j0:i0*ldc+n]...)
		Gemm(transA, transB, 1, nb, k, as, lda, bs, ldb, c, nb, acc)
		for j := range c {
			if math.Float32bits(c[j]) != math.Float32bits(full[i0*ldc+j0+j]) {
				t.Fatalf("C(%d,%d): %g alone, %g in the whole product", i0, j0+j, c[j], full[i0*ldc+j0+j])
			}
		}
	})
}
