package data

import (
	"compress/flate"
	"encoding/binary"
	"hash"
	"hash/adler32"
	"hash/crc32"
	"io"
	"sync"
)

// A fast PNG decoder for the images data sets are made of: 8-bit,
// non-interlaced grey, grey+alpha, RGB, RGBA and paletted images.
//
// Executors whose image cache budget is spent decode every image on every
// use. Through image/png each decode allocates ~40 KB (zlib and flate state,
// an image.Image, row buffers), which dominates the executor's garbage and
// its peak memory. This decoder parses the chunks itself, inflates with a
// pooled flate reader and unfilters through pooled row buffers, so in steady
// state it allocates only the returned pixels (or nothing, given a buffer).
// It does the two-byte zlib framing itself rather than use compress/zlib,
// whose Reset allocates a fresh Adler-32 hash on every call; a pooled hash
// is reset instead.
//
// It is a pure accelerator: it either produces exactly what image/png plus
// decodeGraySlow would, or reports that it cannot (ok == false), and the
// caller then runs image/png, which also supplies the error messages. So it
// only has to be right when it succeeds, and it is written to succeed only
// on input that image/png accepts: it verifies every CRC image/png verifies,
// follows its chunk-ordering rules, and requires the zlib stream to end
// exactly at the end of the IDAT data. Anything unusual (tRNS chunks,
// 16-bit or sub-byte depths, interlacing, trailing garbage image/png would
// tolerate) is left to image/png.

const pngSignature = "\x89PNG\r\n\x1a\n"

// PNG colour types (PNG spec, 11.2.2).
const (
	pngGrey      = 0
	pngRGB       = 2
	pngPaletted  = 3
	pngGreyAlpha = 4
	pngRGBA      = 6
)

// Chunk types, as big-endian uint32s of their names: comparing these
// rather than strings keeps chunkAt from allocating.
const (
	chunkIHDR = 0x49484452
	chunkPLTE = 0x504c5445
	chunkIDAT = 0x49444154
	chunkIEND = 0x49454e44
	chunktRNS = 0x74524e53
)

// Chunk-ordering stages, as image/png tracks them.
const (
	stStart = iota
	stSeenIHDR
	stSeenPLTE
	stSeenIDAT
)

// pngHeader is what precedes the pixel data: the IHDR fields, the palette,
// and where the first IDAT chunk starts.
type pngHeader struct {
	w, h      int
	depth     uint8
	ctype     uint8
	interlace uint8
	npal      int            // palette entries; 0 without PLTE
	pal       [256 * 3]uint8 // PLTE entries, RGB
	idat      int            // offset of the first IDAT chunk (its length field)
}

// chunkAt returns the chunk starting at off: its type, data and the offset
// of the next chunk. ok is false when the chunk is truncated, its length
// exceeds what image/png accepts (2^31-1), or its CRC is wrong.
func chunkAt(b []byte, off int) (typ uint32, data []byte, next int, ok bool) {
	if off < 0 || len(b)-off < 12 {
		return 0, nil, 0, false
	}
	n := binary.BigEndian.Uint32(b[off:])
	if n > 0x7fffffff || uint64(n) > uint64(len(b)-off-12) {
		return 0, nil, 0, false
	}
	end := off + 8 + int(n)
	if crc32.ChecksumIEEE(b[off+4:end]) != binary.BigEndian.Uint32(b[end:]) {
		return 0, nil, 0, false
	}
	return binary.BigEndian.Uint32(b[off+4:]), b[off+8 : end], end + 4, true
}

// parsePNGHeader walks the chunks before the first IDAT, applying image/png's
// checks. It returns true only when png.DecodeConfig would succeed with the
// same size; it is stricter in places (a tRNS chunk, say), which only sends
// those files down the image/png path.
func parsePNGHeader(b []byte, hd *pngHeader) bool {
	if len(b) < len(pngSignature) || string(b[:len(pngSignature)]) != pngSignature {
		return false
	}
	off := len(pngSignature)
	stage := stStart
	for {
		// IDAT is looked at before its CRC: image/png's DecodeConfig stops
		// at its header, and decode checks the CRC as it reads the data.
		if len(b)-off >= 8 && binary.BigEndian.Uint32(b[off+4:]) == chunkIDAT {
			if stage < stSeenIHDR || (stage == stSeenIHDR && hd.ctype == pngPaletted) {
				return false // chunk out of order
			}
			hd.idat = off
			return true
		}
		typ, data, next, ok := chunkAt(b, off)
		if !ok {
			return false
		}
		switch typ {
		case chunkIHDR:
			if stage != stStart || !hd.parseIHDR(data) {
				return false
			}
			stage = stSeenIHDR
		case chunkPLTE:
			if stage != stSeenIHDR || !hd.parsePLTE(data) {
				return false
			}
			stage = stSeenPLTE
		case chunktRNS, chunkIEND:
			// tRNS changes the colour model (alpha); image/png handles it.
			// IEND before IDAT is an ordering error.
			return false
		}
		off = next
	}
}

// parseIHDR applies image/png's IHDR checks.
func (hd *pngHeader) parseIHDR(d []byte) bool {
	if len(d) != 13 || d[10] != 0 || d[11] != 0 || d[12] > 1 {
		return false // bad length, compression, filter or interlace method
	}
	w := int32(binary.BigEndian.Uint32(d[0:]))
	h := int32(binary.BigEndian.Uint32(d[4:]))
	if w <= 0 || h <= 0 {
		return false
	}
	n64 := int64(w) * int64(h)
	if n := int(n64); int64(n) != n64 || n != n*8/8 {
		return false // dimension overflow (32-bit platforms)
	}
	depth, ct := d[8], d[9]
	valid := false
	switch depth {
	case 1, 2, 4:
		valid = ct == pngGrey || ct == pngPaletted
	case 8:
		valid = ct == pngGrey || ct == pngRGB || ct == pngPaletted || ct == pngGreyAlpha || ct == pngRGBA
	case 16:
		valid = ct == pngGrey || ct == pngRGB || ct == pngGreyAlpha || ct == pngRGBA
	}
	if !valid {
		return false
	}
	hd.w, hd.h, hd.depth, hd.ctype, hd.interlace = int(w), int(h), depth, ct, d[12]
	return true
}

// parsePLTE applies image/png's PLTE checks: a whole number of entries, at
// most 256 and at most 2^depth, only in paletted or true-colour images
// (where it is ignored).
func (hd *pngHeader) parsePLTE(d []byte) bool {
	np := len(d) / 3
	if len(d)%3 != 0 || np <= 0 || np > 256 || np > 1<<hd.depth {
		return false
	}
	switch hd.ctype {
	case pngPaletted:
		hd.npal = copy(hd.pal[:], d) / 3
	case pngRGB, pngRGBA:
	default:
		return false // PLTE, color type mismatch
	}
	return true
}

// fast reports whether decode handles the image's format.
func (hd *pngHeader) fast() bool {
	return hd.depth == 8 && hd.interlace == 0
}

// bytesPerPixel is the pixel size of the fast formats.
func (hd *pngHeader) bytesPerPixel() int {
	switch hd.ctype {
	case pngRGB:
		return 3
	case pngGreyAlpha:
		return 2
	case pngRGBA:
		return 4
	}
	return 1
}

// idatReader presents the run of consecutive IDAT chunks starting at a
// chunk's data as one stream, like image/png's decoder.Read. It is an
// io.ByteReader so flate reads exactly the bytes of the zlib stream and no
// further, which lets decode check that the stream ends where the data does.
// A bad CRC or a non-IDAT chunk ends the stream (flate then reports an
// unexpected EOF, and the caller falls back to image/png).
type idatReader struct {
	b        []byte
	pos, end int // unread data of the current chunk: b[pos:end]
}

// next moves to the following chunk when the current one is used up; false
// when there is no further valid IDAT chunk.
func (r *idatReader) next() bool {
	for r.pos == r.end {
		typ, data, _, ok := chunkAt(r.b, r.end+4)
		if !ok || typ != chunkIDAT {
			return false
		}
		r.pos, r.end = r.end+12, r.end+12+len(data)
	}
	return true
}

func (r *idatReader) ReadByte() (byte, error) {
	if r.pos == r.end && !r.next() {
		return 0, io.EOF
	}
	c := r.b[r.pos]
	r.pos++
	return c, nil
}

func (r *idatReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if r.pos == r.end && !r.next() {
		return 0, io.EOF
	}
	n := copy(p, r.b[r.pos:r.end])
	r.pos += n
	return n, nil
}

// inflater is the pooled per-decode state: the flate reader (its window
// and Huffman tables are the bulk of image/png's garbage), the Adler-32 of
// the zlib framing and the two scanline buffers.
type inflater struct {
	src   idatReader
	fr    io.ReadCloser // nil until first used
	adler hash.Hash32
	rows  []byte
	tmp   [4]byte // reads through interfaces; a local would escape
}

var inflaters = sync.Pool{New: func() any { return &inflater{adler: adler32.New()} }}

// maxPooledRows bounds the row buffers kept in the pool, so one unusually
// wide image does not pin its buffers for good.
const maxPooledRows = 1 << 20

// decode decodes the pixels of an image parsePNGHeader accepted into dst
// (reused when its capacity is at least w*h, else allocated) as 8-bit grey,
// converting exactly as image/png followed by decodeGraySlow does. ok is
// false for formats it does not handle and for any input image/png might
// treat differently; the caller then uses image/png.
func (hd *pngHeader) decode(dst []uint8, b []byte) (pix []uint8, ok bool) {
	if !hd.fast() {
		return nil, false
	}
	// The first IDAT's CRC is checked here (parsePNGHeader only peeked at
	// its type); later ones as the reader reaches them.
	typ, data, _, ok := chunkAt(b, hd.idat)
	if !ok || typ != chunkIDAT {
		return nil, false
	}

	bpp := hd.bytesPerPixel()
	stride := hd.w * bpp
	n := hd.w * hd.h
	if cap(dst) >= n {
		pix = dst[:n]
	} else {
		pix = make([]uint8, n)
	}

	var lut [256]uint8 // paletted: grey value per index
	if hd.ctype == pngPaletted {
		for i := 0; i < hd.npal; i++ {
			lut[i] = greyRGB(hd.pal[3*i], hd.pal[3*i+1], hd.pal[3*i+2])
		}
		// Indices past the palette stay 0: image/png maps them to opaque
		// black, as libpng does.
	}

	in := inflaters.Get().(*inflater)
	defer func() {
		in.src = idatReader{} // do not pin the file buffer
		if cap(in.rows) > maxPooledRows {
			in.rows = nil
		}
		inflaters.Put(in)
	}()
	in.src = idatReader{b: b, pos: hd.idat + 8, end: hd.idat + 8 + len(data)}
	// The zlib header (RFC 1950), checked as compress/zlib does. A preset
	// dictionary is an error for image/png, so it is left to it.
	cmf, err1 := in.src.ReadByte()
	flg, err2 := in.src.ReadByte()
	if err1 != nil || err2 != nil || cmf&0x0f != 8 || cmf>>4 > 7 || (uint16(cmf)<<8|uint16(flg))%31 != 0 || flg&0x20 != 0 {
		return nil, false
	}
	if in.fr == nil {
		in.fr = flate.NewReader(&in.src)
	} else if err := in.fr.(flate.Resetter).Reset(&in.src, nil); err != nil {
		return nil, false
	}
	in.adler.Reset()

	rowLen := 1 + stride // filter type byte, then the scanline
	if cap(in.rows) < 2*rowLen {
		in.rows = make([]byte, 2*rowLen)
	}
	cur, prev := in.rows[:rowLen], in.rows[rowLen:2*rowLen]
	clear(prev) // the row above the first is all zeros
	for y := 0; y < hd.h; y++ {
		if _, err := io.ReadFull(in.fr, cur); err != nil {
			return nil, false
		}
		in.adler.Write(cur)
		if !unfilter(cur[0], cur[1:], prev[1:], bpp) {
			return nil, false
		}
		hd.convertRow(pix[y*hd.w:(y+1)*hd.w], cur[1:], &lut)
		cur, prev = prev, cur
	}

	// The deflate stream must end here, followed by the zlib checksum of
	// what it produced (image/png reads on to EOF to verify it), exactly at
	// the end of an IDAT chunk: image/png fails on data left over in a
	// chunk, and whether it notices depends on its buffering, so such files
	// go to image/png.
	for i := 0; ; i++ {
		k, err := in.fr.Read(in.tmp[:1])
		if k != 0 || (err != nil && err != io.EOF) || i == 100 {
			return nil, false
		}
		if err == io.EOF {
			break
		}
	}
	if _, err := io.ReadFull(&in.src, in.tmp[:4]); err != nil ||
		binary.BigEndian.Uint32(in.tmp[:]) != in.adler.Sum32() || in.src.pos != in.src.end {
		return nil, false
	}

	// image/png then reads the remaining chunks up to IEND: IDATs after the
	// stream are ignored, IHDR, PLTE and tRNS are out of order here, and
	// every chunk's CRC is checked.
	off := in.src.end + 4
	for {
		typ, data, next, ok := chunkAt(b, off)
		if !ok {
			return nil, false
		}
		switch typ {
		case chunkIHDR, chunkPLTE, chunktRNS:
			return nil, false
		case chunkIEND:
			if len(data) != 0 {
				return nil, false
			}
			return pix, true
		}
		off = next
	}
}

// unfilter reverses a scanline's filter (PNG spec, 9.2) in place, given the
// previous, already unfiltered, scanline. False for an unknown filter type.
func unfilter(ft byte, cur, prev []byte, bpp int) bool {
	prev = prev[:len(cur)]
	switch ft {
	case 0: // None
	case 1: // Sub
		for i := bpp; i < len(cur); i++ {
			cur[i] += cur[i-bpp]
		}
	case 2: // Up
		for i, p := range prev {
			cur[i] += p
		}
	case 3: // Average
		for i := 0; i < bpp; i++ {
			cur[i] += prev[i] / 2
		}
		for i := bpp; i < len(cur); i++ {
			cur[i] += uint8((int(cur[i-bpp]) + int(prev[i])) / 2)
		}
	case 4: // Paeth
		// With nothing to the left, the predictor is always the byte above.
		for i := 0; i < bpp; i++ {
			cur[i] += prev[i]
		}
		for i := bpp; i < len(cur); i++ {
			a, b, c := int(cur[i-bpp]), int(prev[i]), int(prev[i-bpp])
			pa, pb := b-c, a-c
			pc := absInt(pa + pb)
			pa, pb = absInt(pa), absInt(pb)
			switch {
			case pa <= pb && pa <= pc:
				cur[i] += uint8(a)
			case pb <= pc:
				cur[i] += uint8(b)
			default:
				cur[i] += uint8(c)
			}
		}
	default:
		return false
	}
	return true
}

func absInt(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// convertRow converts one unfiltered scanline to grey. The arithmetic is
// color.GrayModel's on what image/png returns: RGB and palette entries are
// opaque (*image.RGBA, color.RGBA), so each 8-bit channel c becomes c*0x101;
// grey+alpha and RGBA become *image.NRGBA, whose RGBA method premultiplies,
// c*0x101*a/0xff.
func (hd *pngHeader) convertRow(out, row []uint8, lut *[256]uint8) {
	switch hd.ctype {
	case pngGrey:
		copy(out, row)
	case pngPaletted:
		row = row[:len(out)]
		for x, idx := range row {
			out[x] = lut[idx]
		}
	case pngRGB:
		row = row[:3*len(out)]
		for x := range out {
			out[x] = greyRGB(row[3*x], row[3*x+1], row[3*x+2])
		}
	case pngGreyAlpha:
		row = row[:2*len(out)]
		for x := range out {
			a := uint32(row[2*x+1])
			y := uint32(row[2*x]) * 0x101 * a / 0xff
			out[x] = grey16(y, y, y)
		}
	case pngRGBA:
		row = row[:4*len(out)]
		for x := range out {
			p := row[4*x : 4*x+4 : 4*x+4]
			a := uint32(p[3])
			r := uint32(p[0]) * 0x101 * a / 0xff
			g := uint32(p[1]) * 0x101 * a / 0xff
			b := uint32(p[2]) * 0x101 * a / 0xff
			out[x] = grey16(r, g, b)
		}
	}
}

// greyRGB is color.GrayModel applied to an opaque 8-bit colour.
func greyRGB(r, g, b uint8) uint8 {
	return grey16(uint32(r)*0x101, uint32(g)*0x101, uint32(b)*0x101)
}

// grey16 is color.GrayModel's luminance of 16-bit premultiplied channels.
// 19595+38470+7471 = 65536, so the sum fits in a uint32.
func grey16(r, g, b uint32) uint8 {
	return uint8((19595*r + 38470*g + 7471*b + 1<<15) >> 24)
}
