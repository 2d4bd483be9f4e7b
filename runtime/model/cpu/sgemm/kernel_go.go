package sgemm

import "math"

// kernelGo is the pure-Go micro-kernel: the reference for the assembly
// kernels and the fallback where they cannot run. It computes the same
// bits as they do (see fma32).
func kernelGo(k int, a, b, c []float32, ldc int, load bool) {
	a = a[:k*mr]
	b = b[:k*nr]
	c = c[:(mr-1)*ldc+nr]
	var t [mr * nr]float32
	if load {
		for i := 0; i < mr; i++ {
			copy(t[i*nr:(i+1)*nr], c[i*ldc:i*ldc+nr])
		}
	}
	for p := 0; p < k; p++ {
		bp := (*[nr]float32)(b[p*nr:])
		ap := (*[mr]float32)(a[p*mr:])
		for i, av := range ap {
			row := (*[nr]float32)(t[i*nr:])
			x := float64(av)
			for j, bv := range bp {
				// fma32(av, bv, row[j]), inlined by hand.
				p := x * float64(bv)
				z := float64(row[j])
				s := p + z
				if u := math.Float64bits(s); u&tieBits == tie || u&expMask < minNorm {
					row[j] = fma32Slow(p, z, s)
					continue
				}
				row[j] = float32(s)
			}
		}
	}
	for i := 0; i < mr; i++ {
		copy(c[i*ldc:i*ldc+nr], t[i*nr:(i+1)*nr])
	}
}

// Bit patterns of a float64 s that fma32 tests before rounding s to
// float32.
const (
	tieBits = 1<<29 - 1          // the float64 fraction bits below float32's
	tie     = 1 << 28            // those bits at a float32 midpoint
	expMask = 0x7ff0000000000000 // the exponent
	minNorm = 0x3810000000000000 // 2^-126, float32's smallest normal
)

// fma32 returns x*y+z rounded once to float32 (round to nearest, ties to
// even), as the FMA instructions of amd64 and arm64 compute it, for finite
// results (NaN payloads may differ).
//
// The product of two float32 is exact in float64, so s, the float64 sum,
// is the exact sum rounded once. Rounding s again to float32 can only go
// wrong when s lands exactly on a float32 midpoint (a tie that the exact
// sum may not be), or in the float32 subnormal range where the midpoints
// lie elsewhere; those rare cases take fma32Slow.
func fma32(x, y, z float32) float32 {
	p := float64(x) * float64(y)
	zz := float64(z)
	s := p + zz
	u := math.Float64bits(s)
	if u&tieBits == tie || u&expMask < minNorm {
		return fma32Slow(p, zz, s)
	}
	return float32(s)
}

// fma32Slow rounds p+z (s = p+z rounded to float64) to float32 exactly:
// s is turned into the sum rounded to odd (its last bit set when inexact,
// the exact error found with TwoSum), and rounding a round-to-odd value of
// 53 bits to 24 bits gives the correctly rounded result (Boldo and
// Melquiond, "Emulation of FMA and correctly rounded sums", 2008).
//
//go:noinline
func fma32Slow(p, z, s float64) float32 {
	bb := s - p
	e := (p - (s - bb)) + (z - bb)
	if e != 0 && s-s == 0 { // inexact, and s finite
		u := math.Float64bits(s)
		if u&1 == 0 {
			if (e > 0) == (s > 0) {
				u++
			} else {
				u--
			}
			s = math.Float64frombits(u)
		}
	}
	return float32(s)
}
