// Command sgemmgen generates the amd64 assembly of
// runtime/model/cpu/sgemm with avo: the AVX2/FMA 6×16 micro-kernel and the
// CPUID/XGETBV helpers used to detect it. Run it through `go generate` in
// runtime/model/cpu/sgemm (see the package documentation there); it lives in
// its own module so that avo stays out of the main go.mod.
package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// The micro-kernel shape; must match mr and nr in sgemm.go.
const (
	mr = 6
	nr = 16
)

func main() {
	ConstraintExpr("!purego")

	kernel()
	cpuid()
	xgetbv()

	Generate()
}

// kernel emits kernelAVX2, the 6×16 micro-kernel. For every element of the
// tile it runs one fused multiply-add chain over p = 0..k-1, starting from
// the C value (load) or +0, and stores the result back to C.
func kernel() {
	TEXT("kernelAVX2", NOSPLIT, "func(k int, a, b, c *float32, ldc int, load bool)")
	Pragma("noescape")
	Doc(
		"kernelAVX2 computes the 6×16 tile at c (row stride ldc elements):",
		"c[i][j] = fma(a[p*6+i], b[p*16+j], c[i][j]) for p = 0..k-1 in order,",
		"starting from the stored c when load is true and from +0 otherwise.",
		"a and b are packed panels of k*6 and k*16 float32.",
	)

	k := Load(Param("k"), GP64())
	pa := Load(Param("a"), GP64())
	pb := Load(Param("b"), GP64())
	pc := Load(Param("c"), GP64())
	ldc := Load(Param("ldc"), GP64())
	SHLQ(U8(2), ldc) // bytes per row of C

	acc := make([]reg.VecVirtual, 2*mr)
	for i := range acc {
		acc[i] = YMM()
	}

	// Accumulators: the stored tile, or zero.
	load := Load(Param("load"), GP8())
	TESTB(load, load)
	JZ(LabelRef("zero"))
	row := GP64()
	MOVQ(pc, row)
	for i := 0; i < mr; i++ {
		VMOVUPS(Mem{Base: row}, acc[2*i])
		VMOVUPS(Mem{Base: row, Disp: 32}, acc[2*i+1])
		if i < mr-1 {
			ADDQ(ldc, row)
		}
	}
	JMP(LabelRef("loop4"))
	Label("zero")
	for i := range acc {
		VXORPS(acc[i], acc[i], acc[i])
	}

	b0, b1 := YMM(), YMM()
	av := []reg.VecVirtual{YMM(), YMM()}
	step := func(off int) {
		VMOVUPS(Mem{Base: pb, Disp: off * nr * 4}, b0)
		VMOVUPS(Mem{Base: pb, Disp: off*nr*4 + 32}, b1)
		for i := 0; i < mr; i++ {
			x := av[i%2]
			VBROADCASTSS(Mem{Base: pa, Disp: (off*mr + i) * 4}, x)
			VFMADD231PS(b0, x, acc[2*i])
			VFMADD231PS(b1, x, acc[2*i+1])
		}
	}

	const unroll = 4
	Label("loop4")
	CMPQ(k, U8(unroll))
	JL(LabelRef("tail"))
	for u := 0; u < unroll; u++ {
		step(u)
	}
	ADDQ(U32(unroll*mr*4), pa)
	ADDQ(U32(unroll*nr*4), pb)
	SUBQ(U8(unroll), k)
	JMP(LabelRef("loop4"))

	Label("tail")
	TESTQ(k, k)
	JZ(LabelRef("store"))
	step(0)
	ADDQ(U8(mr*4), pa)
	ADDQ(U8(nr*4), pb)
	DECQ(k)
	JMP(LabelRef("tail"))

	Label("store")
	for i := 0; i < mr; i++ {
		VMOVUPS(acc[2*i], Mem{Base: pc})
		VMOVUPS(acc[2*i+1], Mem{Base: pc, Disp: 32})
		if i < mr-1 {
			ADDQ(ldc, pc)
		}
	}
	VZEROUPPER()
	RET()
}

func cpuid() {
	TEXT("cpuid", NOSPLIT, "func(leaf, sub uint32) (eax, ebx, ecx, edx uint32)")
	Doc("cpuid executes CPUID with EAX=leaf and ECX=sub.")
	Load(Param("leaf"), reg.EAX)
	Load(Param("sub"), reg.ECX)
	CPUID()
	Store(reg.EAX, Return("eax"))
	Store(reg.EBX, Return("ebx"))
	Store(reg.ECX, Return("ecx"))
	Store(reg.EDX, Return("edx"))
	RET()
}

func xgetbv() {
	TEXT("xgetbv", NOSPLIT, "func() (eax, edx uint32)")
	Doc("xgetbv reads XCR0; call it only when CPUID reports OSXSAVE.")
	XORL(reg.ECX, reg.ECX)
	XGETBV()
	Store(reg.EAX, Return("eax"))
	Store(reg.EDX, Return("edx"))
	RET()
}
