package data

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fastOnly runs the fast decoder alone; ok is false where it defers to
// image/png.
func fastOnly(b []byte) (pix []uint8, w, h int, ok bool) {
	var hd pngHeader
	if !parsePNGHeader(b, &hd) {
		return nil, 0, 0, false
	}
	pix, ok = hd.decode(nil, b)
	return pix, hd.w, hd.h, ok
}

// checkAgrees checks the invariants between the fast decoder, decodeGray and
// image/png for any input: no panics; a fast success only where image/png
// succeeds, with the same pixels; a header the fast path accepts only where
// png.DecodeConfig does, with the same size; decodeGray exactly as
// image/png, errors included. It returns whether the fast path decoded b.
func checkAgrees(t *testing.T, b []byte) bool {
	t.Helper()
	want, ww, wh, werr := decodeGraySlow(nil, b)
	var hd pngHeader
	if parsePNGHeader(b, &hd) {
		w, h, err := pngSize(b)
		if err != nil || w != hd.w || h != hd.h {
			t.Fatalf("fast header %dx%d, png.DecodeConfig %dx%d, %v", hd.w, hd.h, w, h, err)
		}
	}
	pix, w, h, ok := fastOnly(b)
	if ok && (werr != nil || w != ww || h != wh || !bytes.Equal(pix, want)) {
		t.Fatalf("fast path %dx%d %v, image/png %dx%d %v, %v", w, h, pix, ww, wh, want, werr)
	}
	pix, w, h, err := decodeGray(b)
	switch {
	case (err == nil) != (werr == nil):
		t.Fatalf("decodeGray error %v, image/png %v", err, werr)
	case err != nil && err.Error() != werr.Error():
		t.Fatalf("decodeGray error %q, image/png %q", err, werr)
	case err == nil && (w != ww || h != wh || !bytes.Equal(pix, want)):
		t.Fatalf("decodeGray %dx%d %v, image/png %dx%d %v", w, h, pix, ww, wh, want)
	}
	return ok
}

// checkFast checks that the fast path decodes b, identically to image/png.
func checkFast(t *testing.T, b []byte) {
	t.Helper()
	if !checkAgrees(t, b) {
		_, _, _, err := decodeGraySlow(nil, b)
		t.Fatalf("fast path declined a PNG it should decode (image/png: %v)", err)
	}
}

// rawPNG describes a PNG to build by hand, so tests control what encoders
// do not expose: filter types per row, IDAT chunking, grey+alpha (which
// image/png never writes) and malformed variants.
type rawPNG struct {
	w, h    int
	ctype   uint8
	depth   uint8 // 0 means 8
	pix     []byte
	palette []byte              // PLTE data
	filters []byte              // filter type of row y is filters[y%len]; nil: None
	split   int                 // IDAT chunk size; 0: a single chunk
	level   int                 // zlib level; 0 means zlib.DefaultCompression
	before  [][2]string         // extra chunks after IHDR (PLTE excluded): type, data
	after   [][2]string         // extra chunks after the IDATs
	edit    func([]byte) []byte // applied to the zlib stream
}

func chunk(buf *bytes.Buffer, typ string, data []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(data)))
	buf.Write(n[:])
	buf.WriteString(typ)
	buf.Write(data)
	binary.BigEndian.PutUint32(n[:], crc32.ChecksumIEEE(append([]byte(typ), data...)))
	buf.Write(n[:])
}

// refPaeth is the Paeth predictor as the PNG spec writes it.
func refPaeth(a, b, c int) int {
	p := a + b - c
	pa, pb, pc := p-a, p-b, p-c
	if pa < 0 {
		pa = -pa
	}
	if pb < 0 {
		pb = -pb
	}
	if pc < 0 {
		pc = -pc
	}
	if pa <= pb && pa <= pc {
		return a
	}
	if pb <= pc {
		return b
	}
	return c
}

// filtered applies filter type ft to row (prev: the row above, unfiltered).
func filtered(ft byte, row, prev []byte, bpp int) []byte {
	out := make([]byte, len(row))
	for i, x := range row {
		var a, b, c int
		if i >= bpp {
			a, c = int(row[i-bpp]), int(prev[i-bpp])
		}
		b = int(prev[i])
		var pred int
		switch ft {
		case 1:
			pred = a
		case 2:
			pred = b
		case 3:
			pred = (a + b) / 2
		case 4:
			pred = refPaeth(a, b, c)
		}
		out[i] = x - byte(pred)
	}
	return out
}

func (p rawPNG) bytes(t testing.TB) []byte {
	t.Helper()
	bpp := map[uint8]int{0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[p.ctype]
	stride := p.w * bpp
	if len(p.pix) != stride*p.h {
		t.Fatalf("rawPNG: %d bytes for %dx%d colour type %d", len(p.pix), p.w, p.h, p.ctype)
	}
	var data bytes.Buffer
	prev := make([]byte, stride)
	for y := 0; y < p.h; y++ {
		ft := byte(0)
		if len(p.filters) > 0 {
			ft = p.filters[y%len(p.filters)]
		}
		row := p.pix[y*stride : (y+1)*stride]
		data.WriteByte(ft)
		data.Write(filtered(ft, row, prev, bpp))
		prev = row
	}
	level := p.level
	if level == 0 {
		level = zlib.DefaultCompression
	}
	var z bytes.Buffer
	zw, err := zlib.NewWriterLevel(&z, level)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(data.Bytes())
	zw.Close()
	stream := z.Bytes()
	if p.edit != nil {
		stream = p.edit(stream)
	}

	var out bytes.Buffer
	out.WriteString(pngSignature)
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(p.w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(p.h))
	ihdr[8], ihdr[9] = 8, p.ctype
	if p.depth != 0 {
		ihdr[8] = p.depth
	}
	chunk(&out, "IHDR", ihdr)
	if p.palette != nil {
		chunk(&out, "PLTE", p.palette)
	}
	for _, c := range p.before {
		chunk(&out, c[0], []byte(c[1]))
	}
	split := p.split
	if split <= 0 {
		split = len(stream)
	}
	for len(stream) > 0 {
		n := min(split, len(stream))
		chunk(&out, "IDAT", stream[:n])
		stream = stream[n:]
	}
	for _, c := range p.after {
		chunk(&out, c[0], []byte(c[1]))
	}
	chunk(&out, "IEND", nil)
	return out.Bytes()
}

// randPix returns n bytes in one of several styles, so that compressors and
// filter heuristics see noise, flat areas and gradients.
func randPix(rng *rand.Rand, n, style int) []byte {
	b := make([]byte, n)
	for i := range b {
		switch style % 4 {
		case 0:
			b[i] = byte(rng.IntN(256))
		case 1:
			b[i] = byte(i * 7)
		case 2:
			if rng.IntN(8) == 0 {
				b[i] = byte(rng.IntN(256))
			} else {
				b[i] = 255
			}
		case 3:
			b[i] = byte(i*i/5 + rng.IntN(3))
		}
	}
	return b
}

var testSizes = [][2]int{{1, 1}, {1, 5}, {5, 1}, {2, 3}, {3, 2}, {7, 7}, {28, 28}, {33, 17}, {64, 3}, {5, 80}}

// encodedImages returns images of every kind image/png's encoder turns into
// a format the fast path handles: grey (Gray), RGB (opaque RGBA), RGBA
// (translucent NRGBA), paletted with more than 16 colours (8-bit indices).
func encodedImages(rng *rand.Rand, w, h, style int) map[string]image.Image {
	r := image.Rect(0, 0, w, h)
	gray := image.NewGray(r)
	copy(gray.Pix, randPix(rng, len(gray.Pix), style))
	rgb := image.NewRGBA(r)
	copy(rgb.Pix, randPix(rng, len(rgb.Pix), style))
	for i := 3; i < len(rgb.Pix); i += 4 {
		rgb.Pix[i] = 0xff
	}
	nrgba := image.NewNRGBA(r)
	copy(nrgba.Pix, randPix(rng, len(nrgba.Pix), style))
	nrgba.Pix[3] = 0x80 // at least one translucent pixel: colour type 6
	pal := make(color.Palette, 17+rng.IntN(240))
	for i := range pal {
		pal[i] = color.RGBA{byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256)), 0xff}
	}
	paletted := image.NewPaletted(r, pal)
	for i := range paletted.Pix {
		paletted.Pix[i] = byte(rng.IntN(len(pal)))
	}
	return map[string]image.Image{"grey": gray, "RGB": rgb, "RGBA": nrgba, "paletted": paletted}
}

// TestFastDecodeEncoded compares the fast path with image/png on images
// image/png encodes, at every compression level (the encoder picks filters
// adaptively row by row; NoCompression uses stored blocks).
func TestFastDecodeEncoded(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	levels := []png.CompressionLevel{png.DefaultCompression, png.NoCompression, png.BestSpeed, png.BestCompression}
	for _, sz := range testSizes {
		for style := 0; style < 4; style++ {
			for name, img := range encodedImages(rng, sz[0], sz[1], style) {
				enc := png.Encoder{CompressionLevel: levels[(style+sz[0])%len(levels)]}
				var buf bytes.Buffer
				if err := enc.Encode(&buf, img); err != nil {
					t.Fatal(err)
				}
				t.Run(fmt.Sprintf("%s/%dx%d/style%d", name, sz[0], sz[1], style), func(t *testing.T) {
					checkFast(t, buf.Bytes())
				})
			}
		}
	}
}

// TestFastDecodeFilters builds PNGs by hand with each filter type (and
// mixes), IDAT split over several chunks, for every colour type.
func TestFastDecodeFilters(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	bpps := map[uint8]int{0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
	filterSets := [][]byte{{0}, {1}, {2}, {3}, {4}, {4, 3, 2, 1, 0}, {2, 4, 1, 3}}
	for _, ct := range []uint8{0, 2, 3, 4, 6} {
		for _, sz := range testSizes {
			for fi, filters := range filterSets {
				for _, split := range []int{0, 1, 7} {
					p := rawPNG{w: sz[0], h: sz[1], ctype: ct, filters: filters, split: split}
					p.pix = randPix(rng, p.w*p.h*bpps[ct], fi+split)
					if ct == 3 {
						// Fewer entries than indices used: out-of-range
						// indices are opaque black to image/png.
						p.palette = randPix(rng, 3*(1+rng.IntN(256)), 0)
						if fi%2 == 0 {
							p.palette = p.palette[:3*min(len(p.palette)/3, 200)]
						}
					}
					b := p.bytes(t)
					t.Run(fmt.Sprintf("ct%d/%dx%d/f%v/split%d", ct, sz[0], sz[1], filters, split), func(t *testing.T) {
						checkFast(t, b)
					})
				}
			}
		}
	}
}

// TestFastDecodeChunks covers ancillary chunks and the chunk layouts
// image/png accepts or rejects.
func TestFastDecodeChunks(t *testing.T) {
	pix := randPix(rand.New(rand.NewPCG(5, 6)), 6*5*3, 0)
	base := rawPNG{w: 6, h: 5, ctype: 2, pix: pix, filters: []byte{0, 1, 2, 3, 4}}
	with := func(f func(*rawPNG)) []byte {
		p := base
		f(&p)
		return p.bytes(t)
	}
	valid := base.bytes(t)
	iend := len(valid) - 12
	tests := []struct {
		name string
		b    []byte
		fast bool   // the fast path decodes it
		err  string // decodeGray's error contains this; "" for success
	}{
		{name: "plain", b: valid, fast: true},
		{name: "ancillary chunks", fast: true, b: with(func(p *rawPNG) {
			p.before = [][2]string{{"gAMA", "\x00\x00\xb1\x8f"}, {"tEXt", "k\x00v"}}
			p.after = [][2]string{{"tEXt", "x\x00y"}}
		})},
		{name: "PLTE in an RGB image", fast: true, b: with(func(p *rawPNG) { p.palette = []byte{1, 2, 3} })},
		{name: "IDAT after the stream, ignored", fast: true, b: with(func(p *rawPNG) {
			p.after = [][2]string{{"tEXt", "x\x00y"}, {"IDAT", "junk"}}
		})},
		{name: "empty IDAT chunks", fast: true, b: with(func(p *rawPNG) { p.after = [][2]string{{"IDAT", ""}} })},
		{name: "one byte per IDAT", fast: true, b: with(func(p *rawPNG) { p.split = 1 })},
		{name: "tRNS", b: with(func(p *rawPNG) { p.before = [][2]string{{"tRNS", "\x00\x01\x00\x02\x00\x03"}} })},
		{name: "garbage after the zlib stream", b: with(func(p *rawPNG) {
			p.edit = func(s []byte) []byte { return append(s, 1, 2, 3) }
		})},
		{name: "stream ends before the last IDAT", fast: true, b: with(func(p *rawPNG) {
			p.edit = func(s []byte) []byte { return append(s, "\x00\x00"...) }
			p.split = 1
		})},
		{name: "16-bit", b: pngBytes(t, image.NewGray16(image.Rect(0, 0, 3, 2)))},
		{name: "1-bit paletted", b: pngBytes(t, &image.Paletted{Pix: make([]uint8, 6), Stride: 3, Rect: image.Rect(0, 0, 3, 2), Palette: color.Palette{color.Black, color.White}})},

		{name: "empty", b: nil, err: "unexpected EOF"},
		{name: "not a PNG", b: []byte("GIF89a......"), err: "not a PNG file"},
		{name: "truncated", b: valid[:len(valid)-20], err: "unexpected EOF"},
		{name: "no IEND", b: valid[:iend], err: "unexpected EOF"},
		{name: "bad IHDR CRC", b: flip(valid, 8+8+13+3), err: "invalid checksum"},
		{name: "bad IDAT CRC", b: flip(valid, iend-1), err: "invalid checksum"},
		{name: "bad IEND CRC", b: flip(valid, len(valid)-1), err: "invalid checksum"},
		{name: "bad zlib header", err: "zlib: invalid header", b: with(func(p *rawPNG) {
			p.edit = func(s []byte) []byte { s[0] = 0x79; return s }
		})},
		{name: "bad zlib checksum", err: "zlib: invalid checksum", b: with(func(p *rawPNG) {
			p.edit = func(s []byte) []byte { s[len(s)-1]++; return s }
		})},
		{name: "bad deflate data", err: "flate: corrupt input", b: with(func(p *rawPNG) {
			p.level = zlib.NoCompression
			p.edit = func(s []byte) []byte { s[2] = 0x07; return s } // reserved block type
		})},
		{name: "IDAT too short", err: "not enough pixel data", b: with(func(p *rawPNG) {
			p.edit = func(s []byte) []byte { return s[:len(s)/2] }
		})},
		{name: "too few rows", err: "not enough pixel data", b: func() []byte {
			b := base
			b.h = 4
			b.pix = pix[:6*4*3]
			out := b.bytes(t)
			binary.BigEndian.PutUint32(out[16+4:], 5) // claim 5 rows
			fixCRC(out, 8)
			return out
		}()},
		{name: "too many rows", err: "too much pixel data", b: func() []byte {
			out := base.bytes(t)
			binary.BigEndian.PutUint32(out[16+4:], 4) // claim 4 rows of 5
			fixCRC(out, 8)
			return out
		}()},
		{name: "bad filter type", err: "bad filter type", b: with(func(p *rawPNG) { p.filters = []byte{0, 5} })},
		{name: "IDAT before IHDR", err: "chunk out of order", b: func() []byte {
			var b bytes.Buffer
			b.WriteString(pngSignature)
			chunk(&b, "IDAT", []byte{1})
			return b.Bytes()
		}()},
		{name: "paletted without PLTE", err: "chunk out of order", b: rawPNG{w: 1, h: 1, ctype: 3, pix: []byte{0}}.bytes(t)},
		{name: "PLTE in a grey image", err: "color type mismatch", b: rawPNG{w: 1, h: 1, ctype: 0, pix: []byte{0}, palette: []byte{1, 2, 3}}.bytes(t)},
		{name: "bad PLTE length", err: "bad PLTE length", b: rawPNG{w: 1, h: 1, ctype: 3, pix: []byte{0}, palette: []byte{1, 2}}.bytes(t)},
		{name: "second IHDR", err: "chunk out of order", b: with(func(p *rawPNG) { p.before = [][2]string{{"IHDR", string(valid[16:29])}} })},
		{name: "IEND with data", err: "bad IEND length", b: with(func(p *rawPNG) { p.after = [][2]string{{"IEND", "x"}} })},
		{name: "bad colour type", err: "unsupported feature", b: rawPNG{w: 1, h: 1, ctype: 2, depth: 4, pix: []byte{0, 0, 0}}.bytes(t)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if fast := checkAgrees(t, tc.b); fast != tc.fast {
				t.Errorf("fast path used: %v, want %v", fast, tc.fast)
			}
			_, _, _, err := decodeGray(tc.b)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want %q", err, tc.err)
			}
		})
	}
}

// flip returns a copy of b with byte i changed.
func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x55
	return c
}

// fixCRC recomputes the CRC of the chunk at off after an edit.
func fixCRC(b []byte, off int) {
	n := int(binary.BigEndian.Uint32(b[off:]))
	binary.BigEndian.PutUint32(b[off+8+n:], crc32.ChecksumIEEE(b[off+4:off+8+n]))
}

// TestFastDecodeCorrupt truncates and mutates valid PNGs everywhere: the
// fast path must never panic, nor accept what image/png rejects, nor differ.
func TestFastDecodeCorrupt(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var inputs [][]byte
	for _, ct := range []uint8{0, 2, 3, 4, 6} {
		bpp := map[uint8]int{0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ct]
		p := rawPNG{w: 5, h: 4, ctype: ct, filters: []byte{0, 1, 2, 3, 4}, split: 9}
		p.pix = randPix(rng, 5*4*bpp, 0)
		if ct == 3 {
			p.palette = randPix(rng, 3*10, 0)
		}
		inputs = append(inputs, p.bytes(t))
	}
	inputs = append(inputs, grayPNG(t, 6, 3, 9))
	for _, in := range inputs {
		for n := 0; n < len(in); n++ {
			checkAgrees(t, in[:n])
		}
		for i := range in {
			for _, x := range []byte{0x01, 0x80, 0xff} {
				c := bytes.Clone(in)
				c[i] ^= x
				checkAgrees(t, c)
			}
		}
	}
}

// TestDecodeGrayInto checks that a big enough buffer is reused, on both
// paths.
func TestDecodeGrayInto(t *testing.T) {
	for _, b := range [][]byte{grayPNG(t, 4, 3, 1), pngBytes(t, image.NewGray16(image.Rect(0, 0, 4, 3)))} {
		dst := make([]uint8, 20)
		pix, w, h, err := decodeGrayInto(dst, b)
		if err != nil || w != 4 || h != 3 || len(pix) != 12 || &pix[0] != &dst[0] {
			t.Fatalf("%dx%d, %d pixels, err %v; aliases dst: %v", w, h, len(pix), err, len(pix) > 0 && &pix[0] == &dst[0])
		}
		want, _, _, _ := decodeGraySlow(nil, b)
		if !bytes.Equal(pix, want) {
			t.Fatalf("got %v, want %v", pix, want)
		}
		if pix, _, _, _ := decodeGrayInto(dst[:5:5], b); len(pix) != 12 || &pix[0] == &dst[0] {
			t.Fatal("a too small buffer was used")
		}
	}
}

// charPixels draws a FEMNIST-like character: a dark anti-aliased stroke on
// white, so benchmarks compress like real samples rather than noise.
func charPixels(w, h, seed int) []uint8 {
	pix := make([]uint8, w*h)
	cx, cy := float64(w)/2+float64(seed%3-1), float64(h)/2
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			dx, dy := float64(x)-cx, (float64(y)-cy)*0.8
			d := dx*dx + dy*dy - 64 // a ring of radius 8
			if d < 0 {
				d = -d
			}
			v := 255.0
			if d < 40 {
				v = 255 * d / 40
			}
			if x == int(cx)+seed%5 && y > 3 && y < h-3 { // and a bar
				v = 10
			}
			pix[y*w+x] = uint8(v)
		}
	}
	return pix
}

// TestFastDecodeLayout checks images as WriteLayout writes them.
func TestFastDecodeLayout(t *testing.T) {
	enc := &png.Encoder{CompressionLevel: png.BestSpeed, BufferPool: &bufferPool{}}
	for seed := 0; seed < 10; seed++ {
		var buf bytes.Buffer
		if err := encodeGray(enc, &buf, charPixels(28, 28, seed), 28, 28); err != nil {
			t.Fatal(err)
		}
		checkFast(t, buf.Bytes())
	}
}

// benchSplit writes a data set of 28x28 images the way fsdata does.
func benchSplit(tb testing.TB, n int) *Split {
	tb.Helper()
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{Client: "c", Label: i % 10, Pixels: charPixels(28, 28, i)}
	}
	dir := filepath.Join(tb.TempDir(), "ds")
	if err := WriteLayout(dir, 28, 28, recs, recs[:1], nil); err != nil {
		tb.Fatal(err)
	}
	ds, err := Load(dir, "")
	if err != nil {
		tb.Fatal(err)
	}
	return ds.Train
}

// oldDecode is Split.decode as it was before the fast path: os.ReadFile,
// png.DecodeConfig, png.Decode.
func oldDecode(s *Split, i, h, w int) ([]uint8, error) {
	b, err := os.ReadFile(s.abs(i))
	if err != nil {
		return nil, err
	}
	gw, gh, err := pngSize(b)
	if err != nil {
		return nil, err
	}
	if gw != w || gh != h {
		return nil, fmt.Errorf("size %dx%d", gw, gh)
	}
	pix, _, _, err := decodeGraySlow(nil, b)
	return pix, err
}

// TestDecodeAllocs pins the point of the fast path: decoding a cached-out
// image into a buffer allocates next to nothing (the path string and the
// *os.File), where image/png allocated ~40 KB.
func TestDecodeAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	s := benchSplit(t, 4)
	dst := make([]uint8, 28*28)
	var err error
	allocs := testing.AllocsPerRun(50, func() {
		_, _, _, err = s.decode(1, 28, 28, dst)
	})
	if err != nil {
		t.Fatal(err)
	}
	if allocs > 6 {
		t.Errorf("%.1f allocations per decode into a buffer, want at most 6", allocs)
	}
}

// TestBatchPastBudget checks that images the cache does not keep decode
// into Batch's scratch buffer without mixing up pixels.
func TestBatchPastBudget(t *testing.T) {
	s := benchSplit(t, 6)
	s.SetCacheBudget(NewCacheBudget(2 * 28 * 28)) // image 0 (Shape's) is free
	idx := []int32{5, 1, 4, 2, 3, 1, 0}
	got := make([]float32, len(idx)*28*28)
	if _, err := s.Batch(idx, got); err != nil {
		t.Fatal(err)
	}
	cached := 0
	for i := range s.cache {
		if s.cache[i].Load() != nil {
			cached++
		}
	}
	if cached != 3 {
		t.Errorf("%d images cached, want 3", cached)
	}
	for k, i := range idx {
		want := charPixels(28, 28, int(i))
		for j, v := range want {
			if got[k*28*28+j] != byteToUnit[v] {
				t.Fatalf("batch item %d (sample %d) differs at pixel %d", k, i, j)
			}
		}
	}
}

// BenchmarkDecode28x28 decodes one 28x28 grey PNG written by WriteLayout,
// from its file, as an executor does once its cache budget is spent: old is
// the image/png path; new the fast path returning fresh pixels (Image);
// into the fast path into a reused buffer (Batch). The mem variants skip
// the file read.
func BenchmarkDecode28x28(b *testing.B) {
	s := benchSplit(b, 2)
	file, err := os.ReadFile(s.abs(1))
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]uint8, 28*28)
	b.Run("file/old", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := oldDecode(s, 1, 28, 28); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("file/new", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, _, err := s.decode(1, 28, 28, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("file/into", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, _, err := s.decode(1, 28, 28, dst); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("mem/old", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, _, err := decodeGraySlow(nil, file); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("mem/into", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, _, err := decodeGrayInto(dst, file); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzDecodeGray feeds arbitrary bytes to both decoders: the fast path must
// never panic, and where image/png decodes, decodeGray must give the same
// pixels (the fast path itself may only succeed where image/png does).
func FuzzDecodeGray(f *testing.F) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, ct := range []uint8{0, 2, 3, 4, 6} {
		bpp := map[uint8]int{0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ct]
		p := rawPNG{w: 4, h: 3, ctype: ct, filters: []byte{0, 1, 2, 3, 4}, split: 16}
		p.pix = randPix(rng, 4*3*bpp, 2)
		if ct == 3 {
			p.palette = randPix(rng, 3*8, 0)
		}
		f.Add(p.bytes(f))
	}
	for name, img := range encodedImages(rng, 5, 4, 3) {
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			f.Fatal(name, err)
		}
		f.Add(buf.Bytes())
	}
	enc := &png.Encoder{CompressionLevel: png.BestSpeed}
	var buf bytes.Buffer
	if err := encodeGray(enc, &buf, charPixels(28, 28, 0), 28, 28); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		// image/png allocates whatever the header claims; keep it small.
		if w, h, err := pngSize(b); err == nil && int64(w)*int64(h) > 1<<16 {
			return
		}
		checkAgrees(t, b)
	})
}

// TestReadFilePooled checks the pooled reader against os.ReadFile: small
// and larger-than-buffer files, and the errors.
func TestReadFilePooled(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{0, 1, 100, 8 << 10, 8<<10 + 1, 100 << 10} {
		p := filepath.Join(dir, fmt.Sprint(n))
		want := randPix(rng, n, 0)
		if err := os.WriteFile(p, want, 0o644); err != nil {
			t.Fatal(err)
		}
		for range 2 { // the second time with a buffer from the pool
			bp, err := readFilePooled(p)
			if err != nil || !bytes.Equal(*bp, want) {
				t.Fatalf("%d bytes: got %d, %v", n, len(*bp), err)
			}
			putFileBuf(bp)
		}
	}
	for _, p := range []string{filepath.Join(dir, "missing"), dir} {
		_, want := os.ReadFile(p)
		if _, err := readFilePooled(p); err == nil || want == nil || err.Error() != want.Error() {
			t.Errorf("error %v, os.ReadFile's %v", err, want)
		}
	}
}

// TestDecodeLargeImage decodes, through a Split, an image whose file does
// not fit the pool's initial buffer.
func TestDecodeLargeImage(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	img := image.NewGray(image.Rect(0, 0, 120, 90))
	copy(img.Pix, randPix(rng, len(img.Pix), 0))
	b := pngBytes(t, img)
	if len(b) <= 8<<10 {
		t.Fatalf("PNG of %d bytes, want one larger than 8 KB", len(b))
	}
	dir := makeDir(t, map[string]string{"i/0.png": string(b), "m.csv": hdr + "a,i/0.png,x,0\n"})
	s, err := LoadSplit(dir, filepath.Join(dir, "m.csv"))
	if err != nil {
		t.Fatal(err)
	}
	pix, err := s.Image(0)
	if err != nil || !bytes.Equal(pix, img.Pix) {
		t.Fatalf("pixels differ (err %v)", err)
	}
}
