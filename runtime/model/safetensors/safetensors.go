// Package safetensors reads and writes model weights in Hugging Face's
// safetensors format, the file PyTorch loads with
// safetensors.torch.load_file and feeds to Module.load_state_dict.
//
// A file is an 8-byte little-endian header length N, N bytes of JSON
//
//	{"__metadata__": {"k": "v"}, "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, ...}
//
// (the metadata entry is optional and holds strings only), then one data
// buffer: each tensor's little-endian, row-major bytes at its offsets,
// relative to the buffer's start, contiguous, with no gaps or overlaps.
//
// Write produces what the reference implementation (safetensors.torch's
// save_file) produces: tensors ordered by descending dtype then by name,
// compact JSON with the metadata first, the header padded with spaces to a
// multiple of 8 bytes. The same list and metadata always give the same
// bytes. Values are written as F32, except tensors whose name ends in
// "num_batches_tracked", which PyTorch keeps as int64 and which are written
// as I64 (rounded to the nearest integer).
//
// Read accepts F32, F16, BF16, F64, I64 and I32 tensors and converts them
// to float32, refusing values that float32 cannot hold (a finite F64 beyond
// float32's range, an integer float32 cannot represent exactly). It checks
// the file as strictly as the reference: the header at most 100 MB and
// valid UTF-8 JSON starting with '{', no duplicate names, shapes whose
// element counts fit their byte ranges (every product checked for
// overflow), offsets that tile the data buffer exactly up to the end of the
// file. Nothing is allocated from a size the file claims before that size
// is checked against the real file size.
package safetensors

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/fedscale/fedscale-go/runtime/model"
	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// MaxHeaderSize is the largest JSON header Read accepts, as the reference
// implementation does.
const MaxHeaderSize = 100_000_000

// metadataKey is the header entry that holds the free-form string map.
const metadataKey = "__metadata__"

// Dtypes, ordered as the reference implementation orders them: Write
// sorts by descending rank.
type dtype struct {
	name string
	size int
	rank int
}

var dtypes = map[string]dtype{
	"BOOL": {"BOOL", 1, 0}, "U8": {"U8", 1, 1}, "I8": {"I8", 1, 2},
	"F8_E5M2": {"F8_E5M2", 1, 3}, "F8_E4M3": {"F8_E4M3", 1, 4},
	"I16": {"I16", 2, 5}, "U16": {"U16", 2, 6}, "F16": {"F16", 2, 7}, "BF16": {"BF16", 2, 8},
	"I32": {"I32", 4, 9}, "U32": {"U32", 4, 10}, "F32": {"F32", 4, 11},
	"F64": {"F64", 8, 12}, "I64": {"I64", 8, 13}, "U64": {"U64", 8, 14},
}

// readable lists the dtypes Read converts to float32.
var readable = map[string]bool{"F32": true, "F16": true, "BF16": true, "F64": true, "I64": true, "I32": true}

// ---- writing ----

type entry struct {
	t     *tensor.Tensor
	dt    dtype
	start int64
	end   int64
}

// Write encodes l and the optional metadata (nil or empty: none) to w.
// Names must be non-empty, valid UTF-8, unique and not "__metadata__";
// every tensor's data must match its shape; num_batches_tracked values must
// be finite, non-negative and within int64.
func Write(w io.Writer, l tensor.List, meta map[string]string) error {
	header, entries, err := prepare(l, meta)
	if err != nil {
		return err
	}
	return writeTo(w, header, entries)
}

// writeTo writes a prepared header and its tensors' data.
func writeTo(w io.Writer, header []byte, entries []entry) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(header)))
	if _, err := bw.Write(n[:]); err != nil {
		return err
	}
	if _, err := bw.Write(header); err != nil {
		return err
	}
	buf := make([]byte, 0, 1<<16)
	for _, e := range entries {
		for data := e.t.Data; len(data) > 0; {
			m := min(len(data), cap(buf)/e.dt.size)
			buf = encode(buf[:0], e.dt.name, data[:m])
			if _, err := bw.Write(buf); err != nil {
				return err
			}
			data = data[m:]
		}
	}
	return bw.Flush()
}

// encode appends vs as little-endian dtype dt (F32, or I64 rounded to the
// nearest integer; prepare has checked the range).
func encode(b []byte, dt string, vs []float32) []byte {
	if dt == "I64" {
		for _, v := range vs {
			b = binary.LittleEndian.AppendUint64(b, uint64(int64(math.Round(float64(v)))))
		}
		return b
	}
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

// WriteFile writes l and meta to path atomically: the bytes go to a
// temporary file in the same directory, which is synced and then renamed
// over path, so a crash leaves either the old file or the new one. Missing
// parent directories are created.
func WriteFile(path string, l tensor.List, meta map[string]string) (err error) {
	// Check before creating anything, so a bad list leaves no trace.
	header, entries, err := prepare(l, meta)
	if err != nil {
		return fmt.Errorf("safetensors file %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := writeTo(tmp, header, entries); err != nil {
		return fmt.Errorf("safetensors file %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// CreateTemp makes the file 0600; a model file is as readable as a log.
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// prepare validates l and returns the header bytes (padded) and the
// tensors in data order.
func prepare(l tensor.List, meta map[string]string) ([]byte, []entry, error) {
	entries := make([]entry, len(l))
	seen := make(map[string]bool, len(l))
	for i := range l {
		t := &l[i]
		if err := checkName(t.Name); err != nil {
			return nil, nil, fmt.Errorf("tensor %d: %w", i, err)
		}
		if seen[t.Name] {
			return nil, nil, fmt.Errorf("tensor %q appears twice", t.Name)
		}
		seen[t.Name] = true
		n := int64(1)
		for _, d := range t.Shape {
			if d < 0 {
				return nil, nil, fmt.Errorf("tensor %q: negative dimension in shape %v", t.Name, t.Shape)
			}
			if d != 0 && n > math.MaxInt64/int64(d) {
				return nil, nil, fmt.Errorf("tensor %q: shape %v overflows", t.Name, t.Shape)
			}
			n *= int64(d)
		}
		if int64(len(t.Data)) != n {
			return nil, nil, fmt.Errorf("tensor %q: %d values for shape %v", t.Name, len(t.Data), t.Shape)
		}
		dt := dtypes["F32"]
		if model.IsBatchCounter(t.Name) {
			dt = dtypes["I64"]
			for _, v := range t.Data {
				// float64(2^63) is exactly representable; anything at or
				// above it does not fit int64.
				if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || math.Round(f) >= 1<<63 {
					return nil, nil, fmt.Errorf("tensor %q: batch counter value %v is not a non-negative int64", t.Name, v)
				}
			}
		}
		entries[i] = entry{t: t, dt: dt}
	}
	for k, v := range meta {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, nil, fmt.Errorf("metadata %q: not valid UTF-8", k)
		}
	}
	sort.SliceStable(entries, func(i, j int) bool {
		a, b := entries[i], entries[j]
		if a.dt.rank != b.dt.rank {
			return a.dt.rank > b.dt.rank
		}
		return a.t.Name < b.t.Name
	})
	var off int64
	for i := range entries {
		e := &entries[i]
		e.start = off
		off += int64(len(e.t.Data)) * int64(e.dt.size)
		e.end = off
	}

	var h bytes.Buffer
	h.WriteByte('{')
	first := true
	if len(meta) > 0 {
		keys := make([]string, 0, len(meta))
		for k := range meta {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		writeString(&h, metadataKey)
		h.WriteString(":{")
		for i, k := range keys {
			if i > 0 {
				h.WriteByte(',')
			}
			writeString(&h, k)
			h.WriteByte(':')
			writeString(&h, meta[k])
		}
		h.WriteByte('}')
		first = false
	}
	for _, e := range entries {
		if !first {
			h.WriteByte(',')
		}
		first = false
		writeString(&h, e.t.Name)
		h.WriteString(`:{"dtype":"`)
		h.WriteString(e.dt.name)
		h.WriteString(`","shape":[`)
		for i, d := range e.t.Shape {
			if i > 0 {
				h.WriteByte(',')
			}
			h.WriteString(strconv.Itoa(d))
		}
		h.WriteString(`],"data_offsets":[`)
		h.WriteString(strconv.FormatInt(e.start, 10))
		h.WriteByte(',')
		h.WriteString(strconv.FormatInt(e.end, 10))
		h.WriteString("]}")
	}
	h.WriteByte('}')
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}
	return h.Bytes(), entries, nil
}

func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case name == metadataKey:
		return fmt.Errorf("name %q is reserved for metadata", name)
	case !utf8.ValidString(name):
		return fmt.Errorf("name %q is not valid UTF-8", name)
	}
	return nil
}

// writeString writes s as a JSON string the way serde_json (the reference
// implementation's encoder) does: only '"', '\\' and control characters
// are escaped, everything else is written as UTF-8.
func writeString(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < 0x20 {
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xf])
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
}

// ---- reading ----

// info is one tensor's header entry.
type info struct {
	name  string
	dt    dtype
	shape []int
	start int64
	end   int64
}

// ReadFile reads the safetensors file at path. Errors name the file.
func ReadFile(path string) (tensor.List, map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("safetensors file %s: not a regular file", path)
	}
	l, meta, err := Read(f, st.Size())
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors file %s: %w", path, err)
	}
	return l, meta, nil
}

// Read decodes a safetensors file of size bytes from r. It returns the
// tensors in the order of their data in the file (names break ties between
// empty tensors) and the metadata (nil when the file has none).
func Read(r io.ReaderAt, size int64) (tensor.List, map[string]string, error) {
	if size < 8 {
		return nil, nil, fmt.Errorf("%d bytes: too short for the 8-byte header length", size)
	}
	var nb [8]byte
	if err := readAt(r, nb[:], 0); err != nil {
		return nil, nil, fmt.Errorf("reading the header length: %w", err)
	}
	n := binary.LittleEndian.Uint64(nb[:])
	if n > MaxHeaderSize {
		return nil, nil, fmt.Errorf("header length %d exceeds the limit of %d bytes", n, MaxHeaderSize)
	}
	if n > uint64(size-8) {
		return nil, nil, fmt.Errorf("header length %d exceeds the %d bytes after the length", n, size-8)
	}
	header := make([]byte, n)
	if err := readAt(r, header, 8); err != nil {
		return nil, nil, fmt.Errorf("reading the header: %w", err)
	}
	dataSize := size - 8 - int64(n)
	infos, meta, err := parseHeader(header, dataSize)
	if err != nil {
		return nil, nil, err
	}
	out := make(tensor.List, len(infos))
	buf := make([]byte, 0, min(int64(1<<20), dataSize))
	for i, in := range infos {
		t := tensor.Tensor{Name: in.name, Shape: in.shape, Data: make([]float32, (in.end-in.start)/int64(in.dt.size))}
		if err := readData(r, 8+int64(n), in, t.Data, &buf); err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", in.name, err)
		}
		out[i] = t
	}
	return out, meta, nil
}

// readAt fills b from offset off. A reader may report io.EOF along with a
// full read at the end of its input; that is success.
func readAt(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// parseHeader decodes and checks the JSON header against a data buffer of
// dataSize bytes. The infos come back in data order.
func parseHeader(header []byte, dataSize int64) ([]info, map[string]string, error) {
	if !utf8.Valid(header) {
		return nil, nil, errors.New("header is not valid UTF-8")
	}
	if len(header) == 0 || header[0] != '{' {
		return nil, nil, errors.New("header does not start with '{'")
	}
	dec := json.NewDecoder(bytes.NewReader(header))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil { // '{'
		return nil, nil, fmt.Errorf("header: %w", err)
	}
	var infos []info
	var meta map[string]string
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("header: %w", err)
		}
		name, _ := tok.(string)
		if seen[name] {
			return nil, nil, fmt.Errorf("header: %q appears twice", clip(name))
		}
		seen[name] = true
		if name == metadataKey {
			var m map[string]string
			if err := dec.Decode(&m); err != nil {
				return nil, nil, fmt.Errorf("header: %s must map strings to strings: %w", metadataKey, err)
			}
			meta = m
			continue
		}
		var raw struct {
			Dtype       *string  `json:"dtype"`
			Shape       []uint64 `json:"shape"`
			DataOffsets []uint64 `json:"data_offsets"`
		}
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", clip(name), err)
		}
		in, err := checkInfo(name, raw.Dtype, raw.Shape, raw.DataOffsets)
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", clip(name), err)
		}
		infos = append(infos, in)
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, nil, fmt.Errorf("header: %w", err)
	}
	// Only the padding may follow the object.
	rest := header[dec.InputOffset():]
	if len(bytes.Trim(rest, " \t\r\n")) != 0 {
		return nil, nil, errors.New("header: data after the JSON object")
	}

	sort.Slice(infos, func(i, j int) bool {
		a, b := infos[i], infos[j]
		if a.start != b.start {
			return a.start < b.start
		}
		if a.end != b.end {
			return a.end < b.end
		}
		return a.name < b.name
	})
	var pos int64
	for _, in := range infos {
		switch {
		case in.start > pos:
			return nil, nil, fmt.Errorf("tensor %q: data_offsets [%d,%d] leave bytes %d..%d unused", clip(in.name), in.start, in.end, pos, in.start)
		case in.start < pos:
			return nil, nil, fmt.Errorf("tensor %q: data_offsets [%d,%d] overlap the previous tensor, which ends at %d", clip(in.name), in.start, in.end, pos)
		}
		pos = in.end
	}
	if pos != dataSize {
		return nil, nil, fmt.Errorf("the tensors cover %d bytes of data but the file holds %d after the header", pos, dataSize)
	}
	for _, in := range infos {
		if !readable[in.dt.name] {
			return nil, nil, fmt.Errorf("tensor %q: dtype %s is not supported (supported: F32, F16, BF16, F64, I64, I32)", clip(in.name), in.dt.name)
		}
	}
	return infos, meta, nil
}

// checkInfo validates one header entry on its own: a known dtype, a shape
// whose byte size is exactly the offsets' span, no overflow anywhere.
func checkInfo(name string, dt *string, shape, offsets []uint64) (info, error) {
	if name == "" {
		return info{}, errors.New("empty tensor name")
	}
	if dt == nil {
		return info{}, errors.New("no dtype")
	}
	d, ok := dtypes[*dt]
	if !ok {
		return info{}, fmt.Errorf("unknown dtype %q", clip(*dt))
	}
	if shape == nil {
		return info{}, errors.New("no shape")
	}
	if len(offsets) != 2 {
		return info{}, fmt.Errorf("data_offsets must be [begin, end], got %d numbers", len(offsets))
	}
	s, e := offsets[0], offsets[1]
	if e < s {
		return info{}, fmt.Errorf("data_offsets [%d,%d] end before they begin", s, e)
	}
	if e > math.MaxInt64 {
		return info{}, fmt.Errorf("data_offsets [%d,%d] beyond any file", s, e)
	}
	elems := uint64(1)
	dims := make([]int, len(shape))
	for i, x := range shape {
		if x > math.MaxInt64 {
			return info{}, fmt.Errorf("shape %v: dimension too large", shape)
		}
		if x != 0 && elems > math.MaxInt64/x {
			return info{}, fmt.Errorf("shape %v: element count overflows", shape)
		}
		elems *= x
		dims[i] = int(x)
	}
	if elems > math.MaxInt64/uint64(d.size) {
		return info{}, fmt.Errorf("shape %v of %s: byte size overflows", shape, d.name)
	}
	if want := elems * uint64(d.size); e-s != want {
		return info{}, fmt.Errorf("shape %v of %s needs %d bytes but data_offsets [%d,%d] span %d", shape, d.name, want, s, e, e-s)
	}
	return info{name: name, dt: d, shape: dims, start: int64(s), end: int64(e)}, nil
}

// readData reads in's bytes (relative to the data buffer at base) in
// chunks and converts them into out.
func readData(r io.ReaderAt, base int64, in info, out []float32, buf *[]byte) error {
	size := int64(in.dt.size)
	chunk := int64(cap(*buf)) / size * size
	if chunk == 0 {
		chunk = size
	}
	k := 0
	for off := in.start; off < in.end; {
		m := min(chunk, in.end-off)
		if int64(cap(*buf)) < m {
			*buf = make([]byte, m)
		}
		b := (*buf)[:m]
		if err := readAt(r, b, base+off); err != nil {
			return fmt.Errorf("reading data: %w", err)
		}
		if err := decode(in.dt.name, b, out[k:k+len(b)/int(size)]); err != nil {
			var ee *elemError
			if errors.As(err, &ee) {
				return fmt.Errorf("element %d: %w", k+ee.i, ee.err)
			}
			return err
		}
		k += len(b) / int(size)
		off += m
	}
	return nil
}

// elemError locates a conversion failure within one decode call.
type elemError struct {
	i   int
	err error
}

func (e *elemError) Error() string { return fmt.Sprintf("element %d: %v", e.i, e.err) }

// decode converts the little-endian elements of dtype dt in b into out.
func decode(dt string, b []byte, out []float32) error {
	switch dt {
	case "F32":
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case "F16":
		for i := range out {
			out[i] = halfToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
		}
	case "BF16":
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
		}
	case "F64":
		for i := range out {
			f := math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
			g := float32(f)
			if math.IsInf(float64(g), 0) && !math.IsInf(f, 0) {
				return &elemError{i, fmt.Errorf("F64 value %v is beyond float32's range", f)}
			}
			out[i] = g
		}
	case "I64":
		for i := range out {
			v, err := intToFloat32(int64(binary.LittleEndian.Uint64(b[8*i:])))
			if err != nil {
				return &elemError{i, err}
			}
			out[i] = v
		}
	case "I32":
		for i := range out {
			v, err := intToFloat32(int64(int32(binary.LittleEndian.Uint32(b[4*i:]))))
			if err != nil {
				return &elemError{i, err}
			}
			out[i] = v
		}
	default:
		return fmt.Errorf("dtype %s is not supported", dt)
	}
	return nil
}

// intToFloat32 converts v exactly or not at all.
func intToFloat32(v int64) (float32, error) {
	if v > -(1<<24) && v < 1<<24 {
		return float32(v), nil
	}
	f := float32(v)
	// float32(v) lies in [-2^63, 2^63]; 2^63 itself does not convert back.
	if float64(f) < 1<<63 && int64(f) == v {
		return f, nil
	}
	return 0, fmt.Errorf("integer %d cannot be represented exactly as float32", v)
}

// halfToFloat32 converts an IEEE 754 binary16 value exactly.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
	case frac == 0: // ±0
		return math.Float32frombits(sign)
	}
	// Subnormal: frac * 2^-24, exact in float32.
	f := float32(frac) * (1.0 / (1 << 24))
	if sign != 0 {
		f = -f
	}
	return f
}

// clip shortens names from hostile files for error messages.
func clip(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// ---- matching ----

// Match returns got's tensors in want's order, matched by name: the model's
// own list (model.Layout) as want, a file's tensors as got. It reports every
// name want has and got lacks, every name got has and want lacks, and every
// shape that differs, in one error.
func Match(want, got tensor.List) (tensor.List, error) {
	byName := make(map[string]int, len(got))
	for i, t := range got {
		if _, dup := byName[t.Name]; dup {
			return nil, fmt.Errorf("tensor %q appears twice", clip(t.Name))
		}
		byName[t.Name] = i
	}
	out := make(tensor.List, len(want))
	used := make(map[string]bool, len(want))
	var missing, shapes []string
	for i, w := range want {
		j, ok := byName[w.Name]
		if !ok {
			missing = append(missing, w.Name)
			continue
		}
		used[w.Name] = true
		g := got[j]
		if !slices.Equal(g.Shape, w.Shape) || len(g.Data) != tensor.Size(w.Shape) {
			shapes = append(shapes, fmt.Sprintf("%s has shape %v, the model wants %v", g.Name, g.Shape, w.Shape))
			continue
		}
		out[i] = g
	}
	var extra []string
	for _, t := range got {
		if !used[t.Name] {
			extra = append(extra, clip(t.Name))
		}
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, fmt.Sprintf("%d tensor(s) missing: %s", len(missing), list(missing)))
	}
	if len(extra) > 0 {
		parts = append(parts, fmt.Sprintf("%d unexpected tensor(s): %s", len(extra), list(extra)))
	}
	if len(shapes) > 0 {
		parts = append(parts, fmt.Sprintf("%d shape mismatch(es): %s", len(shapes), list(shapes)))
	}
	if len(parts) > 0 {
		return nil, errors.New(strings.Join(parts, "; "))
	}
	return out, nil
}

// list joins up to 5 items and counts the rest.
func list(items []string) string {
	const show = 5
	if len(items) <= show {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:show], ", "), len(items)-show)
}
