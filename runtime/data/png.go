package data

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
)

// maxPixels bounds the size of an image we are willing to decode when the
// dataset's size is not known yet, so that a hostile or broken PNG header
// cannot make us allocate gigabytes.
const maxPixels = 1 << 24

// pngSize reads only the PNG header and returns the image's width and height.
func pngSize(b []byte) (w, h int, err error) {
	cfg, err := png.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return 0, 0, err
	}
	return cfg.Width, cfg.Height, nil
}

// decodeGray decodes a PNG into w*h 8-bit grey pixels, row-major. Colour,
// paletted and 16-bit images are converted with color.GrayModel (the usual
// ITU-R 601 luminance weights 0.299, 0.587, 0.114).
func decodeGray(b []byte) (pix []uint8, w, h int, err error) {
	return decodeGrayInto(nil, b)
}

// decodeGrayInto is decodeGray decoding into dst when its capacity is at
// least w*h (the result then aliases dst), so a caller that only needs the
// pixels briefly can decode without allocating. Common formats go through
// the fast decoder (pngfast.go); the rest, and anything it does not accept,
// through image/png, which also supplies the error messages.
func decodeGrayInto(dst []uint8, b []byte) (pix []uint8, w, h int, err error) {
	var hd pngHeader
	if parsePNGHeader(b, &hd) && hd.w*hd.h <= maxPixels {
		if pix, ok := hd.decode(dst, b); ok {
			return pix, hd.w, hd.h, nil
		}
	}
	return decodeGraySlow(dst, b)
}

// decodeGraySlow is decodeGrayInto through image/png, for every PNG it
// supports. The fast decoder must match its output bit for bit.
func decodeGraySlow(dst []uint8, b []byte) (pix []uint8, w, h int, err error) {
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, 0, 0, err
	}
	r := img.Bounds()
	w, h = r.Dx(), r.Dy()
	if cap(dst) >= w*h {
		pix = dst[:w*h]
	} else {
		pix = make([]uint8, w*h)
	}
	switch m := img.(type) {
	case *image.Gray:
		for y := 0; y < h; y++ {
			off := m.PixOffset(r.Min.X, r.Min.Y+y)
			copy(pix[y*w:(y+1)*w], m.Pix[off:off+w])
		}
	case *image.RGBA:
		// Fast path for 8-bit RGB(A) PNGs; the arithmetic is exactly
		// color.GrayModel's, on the 16-bit expansion of each channel.
		for y := 0; y < h; y++ {
			off := m.PixOffset(r.Min.X, r.Min.Y+y)
			row := m.Pix[off : off+4*w]
			for x := 0; x < w; x++ {
				rr := uint32(row[4*x]) * 0x101
				gg := uint32(row[4*x+1]) * 0x101
				bb := uint32(row[4*x+2]) * 0x101
				pix[y*w+x] = uint8((19595*rr + 38470*gg + 7471*bb + 1<<15) >> 24)
			}
		}
	default:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				pix[y*w+x] = color.GrayModel.Convert(img.At(r.Min.X+x, r.Min.Y+y)).(color.Gray).Y
			}
		}
	}
	return pix, w, h, nil
}

// encodeGray encodes w*h grey pixels as a PNG. The output depends only on the
// pixels, so layouts written twice are byte-identical.
func encodeGray(enc *png.Encoder, buf *bytes.Buffer, pix []uint8, w, h int) error {
	if len(pix) != w*h {
		return fmt.Errorf("%d pixels, expected %dx%d=%d", len(pix), w, h, w*h)
	}
	img := &image.Gray{Pix: pix, Stride: w, Rect: image.Rect(0, 0, w, h)}
	return enc.Encode(buf, img)
}
