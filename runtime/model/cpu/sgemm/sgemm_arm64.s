//go:build !purego

#include "textflag.h"

// Row i of the 6x16 tile lives in V(4i)..V(4i+3); V24-V27 hold one row of
// the B panel; V28 and V29 take turns holding an element of the A panel
// broadcast to all lanes. The macros name one row's worth of that work, so
// the kernel reads as its six rows.

// LOADROW loads the tile row at R3 into c0-c3 and steps R3 by R4 to the
// next row.
#define LOADROW(c0, c1, c2, c3) \
	VLD1.P	(R3)(R4), [c0.S4, c1.S4, c2.S4, c3.S4]

// ZEROROW clears the tile row c0-c3.
#define ZEROROW(c0, c1, c2, c3) \
	VEOR	c0.B16, c0.B16, c0.B16; \
	VEOR	c1.B16, c1.B16, c1.B16; \
	VEOR	c2.B16, c2.B16, c2.B16; \
	VEOR	c3.B16, c3.B16, c3.B16

// FMLAROW broadcasts the next A element into a (R1 steps past it) and
// adds its products with the B row V24-V27 to the tile row c0-c3.
#define FMLAROW(a, c0, c1, c2, c3) \
	VLD1R.P	4(R1), [a.S4]; \
	VFMLA	V24.S4, a.S4, c0.S4; \
	VFMLA	V25.S4, a.S4, c1.S4; \
	VFMLA	V26.S4, a.S4, c2.S4; \
	VFMLA	V27.S4, a.S4, c3.S4

// STOREROW stores c0-c3 to the tile row at R3 and steps R3 by R4 to the
// next row.
#define STOREROW(c0, c1, c2, c3) \
	VST1.P	[c0.S4, c1.S4, c2.S4, c3.S4], (R3)(R4)

// TILE applies the row macro OP to the six rows of the tile in order.
#define TILE(OP) \
	OP(V0, V1, V2, V3); \
	OP(V4, V5, V6, V7); \
	OP(V8, V9, V10, V11); \
	OP(V12, V13, V14, V15); \
	OP(V16, V17, V18, V19); \
	OP(V20, V21, V22, V23)

// func kernelNEON(k int, a, b, c *float32, ldc int, load bool)
//
// The 6x16 micro-kernel (see kernelGo for its contract). Every lane runs
// its own FMLA chain over p in order.
TEXT ·kernelNEON(SB), NOSPLIT, $0-41
	MOVD	k+0(FP), R0
	MOVD	a+8(FP), R1
	MOVD	b+16(FP), R2
	MOVD	c+24(FP), R3
	MOVD	ldc+32(FP), R4
	MOVBU	load+40(FP), R5
	LSL	$2, R4, R4 // bytes per row of C
	CBZ	R5, zero
	MOVD	R3, R6 // the tile's first row, for the stores
	TILE(LOADROW)
	MOVD	R6, R3
	B	loop

zero:
	TILE(ZEROROW)

loop:
	CBZ	R0, store
	VLD1.P	64(R2), [V24.S4, V25.S4, V26.S4, V27.S4]
	FMLAROW(V28, V0, V1, V2, V3)
	FMLAROW(V29, V4, V5, V6, V7)
	FMLAROW(V28, V8, V9, V10, V11)
	FMLAROW(V29, V12, V13, V14, V15)
	FMLAROW(V28, V16, V17, V18, V19)
	FMLAROW(V29, V20, V21, V22, V23)
	SUB	$1, R0, R0
	B	loop

store:
	TILE(STOREROW)
	RET
