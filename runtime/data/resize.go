package data

import (
	"fmt"
	"math"
	"sync"
)

// This file reproduces Pillow's Image.resize(size, Image.BILINEAR) on 8-bit
// images (libImaging/Resample.c), which torchvision's Resize calls on PIL
// images: a separable convolution whose triangle filter widens with the
// downscaling factor (so shrinking averages, as an antialiasing filter),
// with coefficients computed in doubles, normalised, then rounded to 22-bit
// fixed point; a horizontal pass into an 8-bit intermediate image, then a
// vertical pass, each output rounded and clipped to 0..255. Resizing to the
// same size copies, as Pillow does.

// pilPrecisionBits is Resample.c's PRECISION_BITS for 8-bit images.
const pilPrecisionBits = 32 - 8 - 2

// resampleCoeffs are one axis's fixed-point filter taps: output sample o
// reads inputs bounds[2o] .. bounds[2o]+bounds[2o+1]-1 with weights
// k[o*ksize:].
type resampleCoeffs struct {
	ksize  int
	bounds []int
	k      []int32
}

// pilCoeffs is precompute_coeffs followed by normalize_coeffs_8bpc for the
// bilinear filter (support 1), over the whole input (box 0..inSize).
func pilCoeffs(inSize, outSize int) resampleCoeffs {
	const support0 = 1.0 // bilinear
	scale := float64(float32(inSize)) / float64(outSize)
	filterscale := scale
	if filterscale < 1 {
		filterscale = 1
	}
	support := support0 * filterscale
	ksize := int(math.Ceil(support))*2 + 1
	c := resampleCoeffs{ksize: ksize, bounds: make([]int, 2*outSize), k: make([]int32, outSize*ksize)}
	kk := make([]float64, ksize)
	for xx := 0; xx < outSize; xx++ {
		// The explicit conversions round each product, so no compiler fuses
		// it with the next addition (C's doubles are not fused either).
		center := float64((float64(xx) + 0.5) * scale)
		ss := 1.0 / filterscale
		// C's (int) truncates toward zero, as Go's conversion does.
		xmin := int(center - support + 0.5)
		if xmin < 0 {
			xmin = 0
		}
		xmax := int(center + support + 0.5)
		if xmax > inSize {
			xmax = inSize
		}
		xmax -= xmin
		ww := 0.0
		for x := 0; x < xmax; x++ {
			w := bilinearFilter(float64((float64(x+xmin) - center + 0.5) * ss))
			kk[x] = w
			ww += w
		}
		for x := 0; x < xmax; x++ {
			if ww != 0 {
				kk[x] /= ww
			}
		}
		for x := xmax; x < ksize; x++ {
			kk[x] = 0
		}
		for x := 0; x < ksize; x++ {
			v := float64(kk[x] * (1 << pilPrecisionBits))
			if kk[x] < 0 {
				c.k[xx*ksize+x] = int32(-0.5 + v)
			} else {
				c.k[xx*ksize+x] = int32(0.5 + v)
			}
		}
		c.bounds[2*xx], c.bounds[2*xx+1] = xmin, xmax
	}
	return c
}

func bilinearFilter(x float64) float64 {
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return 1 - x
	}
	return 0
}

// clip8 is Resample.c's clip8: the rounded fixed-point sum to 0..255.
func clip8(in int32) uint8 {
	if in >= 1<<pilPrecisionBits<<8 {
		return 255
	}
	if in <= 0 {
		return 0
	}
	return uint8(in >> pilPrecisionBits)
}

// resizer resizes 8-bit single-channel images of one size to another,
// exactly as Pillow's bilinear resize does. It is safe for concurrent use.
type resizer struct {
	inW, inH, outW, outH int
	horiz, vert          resampleCoeffs
	yFirst, yLast        int // input rows the vertical pass reads
	tmp                  sync.Pool
}

// resizers caches one resizer per size pair; a data set has one.
var resizers sync.Map // [4]int -> *resizer

// maxResizeSide bounds both sides of both sizes: ample for any data set
// image, and it keeps coefficient tables small.
const maxResizeSide = 1 << 14

func getResizer(inW, inH, outW, outH int) (*resizer, error) {
	for _, v := range []int{inW, inH, outW, outH} {
		if v < 1 || v > maxResizeSide {
			return nil, fmt.Errorf("resize %dx%d to %dx%d: sides must be in 1..%d", inW, inH, outW, outH, maxResizeSide)
		}
	}
	key := [4]int{inW, inH, outW, outH}
	if r, ok := resizers.Load(key); ok {
		return r.(*resizer), nil
	}
	r := &resizer{inW: inW, inH: inH, outW: outW, outH: outH, horiz: pilCoeffs(inW, outW), vert: pilCoeffs(inH, outH)}
	r.yFirst = r.vert.bounds[0]
	r.yLast = r.vert.bounds[2*outH-2] + r.vert.bounds[2*outH-1]
	r.tmp.New = func() any { b := make([]uint8, outW*(r.yLast-r.yFirst)); return &b }
	v, _ := resizers.LoadOrStore(key, r)
	return v.(*resizer), nil
}

// resize writes the resized src (inH rows of inW) into dst (outH rows of
// outW).
func (r *resizer) resize(dst, src []uint8) {
	if r.inW == r.outW && r.inH == r.outH {
		copy(dst, src)
		return
	}
	needH := r.inW != r.outW
	needV := r.inH != r.outH
	in, w, yOff := src, r.inW, 0
	if needH {
		out := dst
		if needV {
			bp := r.tmp.Get().(*[]uint8)
			defer r.tmp.Put(bp)
			out = *bp
		}
		r.horizontal(out, src)
		if !needV {
			return
		}
		in, w, yOff = out, r.outW, r.yFirst
	}
	vc := &r.vert
	for yy := 0; yy < r.outH; yy++ {
		ymin, n := vc.bounds[2*yy]-yOff, vc.bounds[2*yy+1]
		k := vc.k[yy*vc.ksize : yy*vc.ksize+n]
		out := dst[yy*w : (yy+1)*w]
		for xx := range out {
			ss := int32(1 << (pilPrecisionBits - 1))
			for y, kv := range k {
				ss += int32(in[(ymin+y)*w+xx]) * kv
			}
			out[xx] = clip8(ss)
		}
	}
}

// horizontal is the horizontal pass: input rows yFirst..yLast-1 (those the
// vertical pass reads; all of them when the height does not change) into
// dst, outW wide. Pillow shifts the vertical bounds to this band.
func (r *resizer) horizontal(dst, src []uint8) {
	hc := &r.horiz
	for yy := 0; yy < r.yLast-r.yFirst; yy++ {
		row := src[(yy+r.yFirst)*r.inW : (yy+r.yFirst+1)*r.inW]
		out := dst[yy*r.outW : (yy+1)*r.outW]
		for xx := range out {
			xmin, n := hc.bounds[2*xx], hc.bounds[2*xx+1]
			k := hc.k[xx*hc.ksize : xx*hc.ksize+n]
			ss := int32(1 << (pilPrecisionBits - 1))
			for x, kv := range k {
				ss += int32(row[xmin+x]) * kv
			}
			out[xx] = clip8(ss)
		}
	}
}
