package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fedscale/fedscale-go/runtime/model"
	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// file assembles a safetensors file from a header string and data bytes.
func file(header string, data []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	b.Write(data)
	return b.Bytes()
}

func f32bytes(vs ...float32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

func encodeBytes(t *testing.T, l tensor.List, meta map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, l, meta); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return b.Bytes()
}

func decodeBytes(b []byte) (tensor.List, map[string]string, error) {
	return Read(bytes.NewReader(b), int64(len(b)))
}

// TestReferenceBytes checks Write against the byte strings the reference
// implementation's own tests expect (safetensors/src/tensor.rs:
// test_serialization, test_empty, test_serialization_forced_alignement).
func TestReferenceBytes(t *testing.T) {
	data := f32bytes(0, 1, 2, 3, 4, 5)
	tests := []struct {
		name   string
		list   tensor.List
		meta   map[string]string
		header string
		data   []byte
	}{
		{"one tensor, no padding needed", tensor.List{{Name: "attn.0", Shape: []int{1, 2, 3}, Data: []float32{0, 1, 2, 3, 4, 5}}}, nil,
			`{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}`, data},
		{"padded to 8 bytes", tensor.List{{Name: "attn0", Shape: []int{1, 1, 2, 3}, Data: []float32{0, 1, 2, 3, 4, 5}}}, nil,
			`{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       `, data},
		{"empty", nil, nil, `{}      `, nil},
		{"empty with metadata", nil, map[string]string{"framework": "pt"}, `{"__metadata__":{"framework":"pt"}}     `, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := encodeBytes(t, tt.list, tt.meta)
			if want := file(tt.header, tt.data); !bytes.Equal(got, want) {
				t.Errorf("Write:\n got %q\nwant %q", got, want)
			}
			l, meta, err := decodeBytes(got)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if len(l) != len(tt.list) || (len(l) > 0 && !reflect.DeepEqual(l, tt.list)) {
				t.Errorf("Read = %v, want %v", l, tt.list)
			}
			if len(tt.meta) > 0 && !reflect.DeepEqual(meta, tt.meta) {
				t.Errorf("metadata = %v, want %v", meta, tt.meta)
			}
		})
	}
}

// TestWriteLayout: counters are I64 and come first (descending dtype), the
// rest by name; metadata keys sorted; JSON escaped as serde_json does;
// scalars have shape [].
func TestWriteLayout(t *testing.T) {
	l := tensor.List{
		{Name: "b.weight", Shape: []int{2}, Data: []float32{1, 2}},
		{Name: "a.num_batches_tracked", Shape: []int{}, Data: []float32{2.5}},
		{Name: "a.weight", Shape: []int{1}, Data: []float32{-1}},
		{Name: "q\"\\\n\x01é<", Shape: []int{0}, Data: []float32{}},
	}
	got := encodeBytes(t, l, map[string]string{"z": "1", "format": "pt"})
	header := `{"__metadata__":{"format":"pt","z":"1"},` +
		`"a.num_batches_tracked":{"dtype":"I64","shape":[],"data_offsets":[0,8]},` +
		`"a.weight":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},` +
		`"b.weight":{"dtype":"F32","shape":[2],"data_offsets":[12,20]},` +
		`"q\"\\\n\u0001é<":{"dtype":"F32","shape":[0],"data_offsets":[20,20]}}`
	for len(header)%8 != 0 {
		header += " "
	}
	data := binary.LittleEndian.AppendUint64(nil, 3) // 2.5 rounds half away from zero
	data = append(data, f32bytes(-1, 1, 2)...)
	if want := file(header, data); !bytes.Equal(got, want) {
		t.Errorf("Write:\n got %q\nwant %q", got, want)
	}
	if again := encodeBytes(t, l, map[string]string{"format": "pt", "z": "1"}); !bytes.Equal(got, again) {
		t.Error("two writes of the same list differ")
	}
	var h map[string]any
	if err := json.Unmarshal([]byte(header), &h); err != nil {
		t.Errorf("header is not JSON: %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	l := tensor.List{
		{Name: "conv.weight", Shape: []int{2, 1, 2, 2}, Data: []float32{1, -2, 3.5, float32(math.Inf(1)), 0, float32(math.Copysign(0, -1)), 1e-40, math.MaxFloat32}},
		{Name: "bn.running_mean", Shape: []int{2}, Data: []float32{0.1, 0.2}},
		{Name: "bn.num_batches_tracked", Shape: []int{}, Data: []float32{7}},
		{Name: "empty", Shape: []int{3, 0}, Data: []float32{}},
		{Name: "fc.bias", Shape: []int{1}, Data: []float32{float32(math.NaN())}},
	}
	b := encodeBytes(t, l, map[string]string{"format": "pt"})
	got, meta, err := decodeBytes(b)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if meta["format"] != "pt" || len(meta) != 1 {
		t.Errorf("metadata = %v", meta)
	}
	// Read returns data order: the counter first, then by name.
	var names []string
	for _, x := range got {
		names = append(names, x.Name)
	}
	if want := []string{"bn.num_batches_tracked", "bn.running_mean", "conv.weight", "empty", "fc.bias"}; !reflect.DeepEqual(names, want) {
		t.Errorf("order %v, want %v", names, want)
	}
	m, err := Match(l, got)
	if err != nil {
		t.Fatalf("Match: %v", err)
	}
	for i := range l {
		if m[i].Name != l[i].Name || !reflect.DeepEqual(m[i].Shape, l[i].Shape) || len(m[i].Data) != len(l[i].Data) {
			t.Fatalf("tensor %d: got %s %v", i, m[i].Name, m[i].Shape)
		}
		for j := range l[i].Data {
			if math.Float32bits(m[i].Data[j]) != math.Float32bits(l[i].Data[j]) {
				t.Errorf("%s[%d] = %v, want %v", l[i].Name, j, m[i].Data[j], l[i].Data[j])
			}
		}
	}
}

func TestWriteErrors(t *testing.T) {
	ok := tensor.Tensor{Name: "w", Shape: []int{1}, Data: []float32{1}}
	tests := []struct {
		name string
		list tensor.List
		meta map[string]string
		want string
	}{
		{"duplicate", tensor.List{ok, ok}, nil, `"w" appears twice`},
		{"empty name", tensor.List{{Shape: []int{}, Data: []float32{1}}}, nil, "empty name"},
		{"reserved name", tensor.List{{Name: "__metadata__", Shape: []int{}, Data: []float32{1}}}, nil, "reserved"},
		{"bad utf-8", tensor.List{{Name: "a\xff", Shape: []int{}, Data: []float32{1}}}, nil, "UTF-8"},
		{"data/shape", tensor.List{{Name: "x", Shape: []int{2, 2}, Data: []float32{1}}}, nil, `"x": 1 values for shape [2 2]`},
		{"negative dim", tensor.List{{Name: "x", Shape: []int{-1}, Data: nil}}, nil, "negative"},
		{"overflow", tensor.List{{Name: "x", Shape: []int{1 << 40, 1 << 40}, Data: nil}}, nil, "overflows"},
		{"negative counter", tensor.List{{Name: "bn.num_batches_tracked", Shape: []int{}, Data: []float32{-1}}}, nil, "non-negative int64"},
		{"NaN counter", tensor.List{{Name: "bn.num_batches_tracked", Shape: []int{}, Data: []float32{float32(math.NaN())}}}, nil, "non-negative int64"},
		{"Inf counter", tensor.List{{Name: "bn.num_batches_tracked", Shape: []int{}, Data: []float32{float32(math.Inf(1))}}}, nil, "non-negative int64"},
		{"huge counter", tensor.List{{Name: "bn.num_batches_tracked", Shape: []int{}, Data: []float32{1e19}}}, nil, "non-negative int64"},
		{"bad metadata", tensor.List{ok}, map[string]string{"k": "\xff"}, "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			err := Write(&b, tt.list, tt.meta)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Write error %v, want one containing %q", err, tt.want)
			}
			if b.Len() != 0 {
				t.Errorf("Write wrote %d bytes before failing", b.Len())
			}
		})
	}
}

// TestCounterLimits: the largest float32 below 2^63 is written exactly.
func TestCounterLimits(t *testing.T) {
	big := math.Nextafter32(1<<63, 0)
	l := tensor.List{{Name: "num_batches_tracked", Shape: []int{3}, Data: []float32{0, 1 << 24, big}}}
	b := encodeBytes(t, l, nil)
	n := binary.LittleEndian.Uint64(b)
	data := b[8+n:]
	for i, want := range []int64{0, 1 << 24, int64(big)} {
		if got := int64(binary.LittleEndian.Uint64(data[8*i:])); got != want {
			t.Errorf("value %d: %d, want %d", i, got, want)
		}
	}
	got, _, err := decodeBytes(b)
	if err != nil || got[0].Data[2] != big {
		t.Errorf("Read: %v, %v", got, err)
	}
}

func TestReadDtypes(t *testing.T) {
	le16 := func(vs ...uint16) []byte {
		var b []byte
		for _, v := range vs {
			b = binary.LittleEndian.AppendUint16(b, v)
		}
		return b
	}
	le64 := func(vs ...uint64) []byte {
		var b []byte
		for _, v := range vs {
			b = binary.LittleEndian.AppendUint64(b, v)
		}
		return b
	}
	le32 := func(vs ...uint32) []byte {
		var b []byte
		for _, v := range vs {
			b = binary.LittleEndian.AppendUint32(b, v)
		}
		return b
	}
	tensorOf := func(dtype string, n, size int, data []byte) []byte {
		h := `{"x":{"dtype":"` + dtype + `","shape":[` + itoa(n) + `],"data_offsets":[0,` + itoa(n*size) + `]}}`
		return file(h, data)
	}
	nan := float32(math.NaN())
	tests := []struct {
		name string
		file []byte
		want []float32
		err  string
	}{
		{"F16", tensorOf("F16", 7, 2, le16(0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000, 0x7c00, 0x3555)),
			[]float32{1, -2, 65504, 1.0 / (1 << 24), float32(math.Copysign(0, -1)), float32(math.Inf(1)), 0.333251953125}, ""},
		{"F16 NaN", tensorOf("F16", 1, 2, le16(0x7e00)), []float32{nan}, ""},
		{"BF16", tensorOf("BF16", 3, 2, le16(0x3f80, 0xc040, 0x7f80)), []float32{1, -3, float32(math.Inf(1))}, ""},
		{"F64", tensorOf("F64", 3, 8, le64(math.Float64bits(0.1), math.Float64bits(math.Inf(-1)), math.Float64bits(3))),
			[]float32{0.1, float32(math.Inf(-1)), 3}, ""},
		{"F64 beyond float32", tensorOf("F64", 2, 8, le64(math.Float64bits(1), math.Float64bits(1e39))), nil, "element 1: F64 value 1e+39 is beyond float32's range"},
		{"I64", tensorOf("I64", 4, 8, le64(0, 5, uint64(1<<40), uint64(0xFFFFFFFFFFFFFFFF))), []float32{0, 5, 1 << 40, -1}, ""},
		{"I64 inexact", tensorOf("I64", 1, 8, le64(1<<24+1)), nil, "16777217 cannot be represented exactly"},
		{"I64 max", tensorOf("I64", 1, 8, le64(math.MaxInt64)), nil, "cannot be represented exactly"},
		{"I64 min", tensorOf("I64", 1, 8, le64(1<<63)), []float32{-(1 << 63)}, ""},
		{"I32", tensorOf("I32", 2, 4, le32(7, 0xFFFFFFF9)), []float32{7, -7}, ""},
		{"U8 unsupported", tensorOf("U8", 2, 1, []byte{1, 2}), nil, "dtype U8 is not supported"},
		{"BOOL unsupported", tensorOf("BOOL", 1, 1, []byte{1}), nil, "dtype BOOL is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _, err := decodeBytes(tt.file)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), `"x"`) {
					t.Fatalf("error %v, want one naming \"x\" and containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			for i, w := range tt.want {
				g := l[0].Data[i]
				if math.Float32bits(g) != math.Float32bits(w) && !(g != g && w != w) {
					t.Errorf("element %d = %v, want %v", i, g, w)
				}
			}
		})
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// hostileCases are files Read must refuse, with a fragment of the error.
var hostileCases = []struct {
	name string
	file []byte
	want string
}{
	{"empty file", nil, "too short"},
	{"7 bytes", []byte{1, 2, 3, 4, 5, 6, 7}, "too short"},
	{"header over 100 MB", binary.LittleEndian.AppendUint64(nil, MaxHeaderSize+1), "exceeds the limit"},
	{"header length 2^64-1", binary.LittleEndian.AppendUint64(nil, math.MaxUint64), "exceeds the limit"},
	{"header past the end", append(binary.LittleEndian.AppendUint64(nil, 100), "{}"...), "exceeds the 2 bytes"},
	{"not UTF-8", file("{\"\xff\":1}", nil), "UTF-8"},
	{"not an object", file(`[]      `, nil), "start with '{'"},
	{"leading space", file(` {}     `, nil), "start with '{'"},
	{"truncated JSON", file(`{"a":{"dtype":"F32"`, nil), "tensor \"a\""},
	{"trailing garbage", file(`{} x`, nil), "after the JSON object"},
	{"second object", file(`{}{}`, nil), "after the JSON object"},
	{"duplicate name", file(`{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[],"data_offsets":[4,8]}}`, make([]byte, 8)), `"a" appears twice`},
	{"duplicate by escape", file(`{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"\u0061":{"dtype":"F32","shape":[],"data_offsets":[4,8]}}`, make([]byte, 8)), `"a" appears twice`},
	{"duplicate metadata", file(`{"__metadata__":{},"__metadata__":{}}`, nil), "appears twice"},
	{"metadata not strings", file(`{"__metadata__":{"a":1}}`, nil), "must map strings to strings"},
	{"metadata not object", file(`{"__metadata__":[]}`, nil), "must map strings to strings"},
	{"tensor not object", file(`{"a":5}`, nil), `tensor "a"`},
	{"tensor null", file(`{"a":null}`, nil), `tensor "a": no dtype`},
	{"no dtype", file(`{"a":{"shape":[],"data_offsets":[0,4]}}`, make([]byte, 4)), "no dtype"},
	{"unknown dtype", file(`{"a":{"dtype":"F128","shape":[],"data_offsets":[0,4]}}`, make([]byte, 4)), `unknown dtype "F128"`},
	{"no shape", file(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, make([]byte, 4)), "no shape"},
	{"null shape", file(`{"a":{"dtype":"F32","shape":null,"data_offsets":[0,4]}}`, make([]byte, 4)), "no shape"},
	{"negative dim", file(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "a"`},
	{"fractional dim", file(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "a"`},
	{"dim too large", file(`{"a":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,4]}}`, make([]byte, 4)), "dimension too large"},
	{"elements overflow", file(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, make([]byte, 4)), "element count overflows"},
	{"overflow before a zero dim", file(`{"a":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}}`, nil), "element count overflows"},
	{"bytes overflow", file(`{"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,4]}}`, make([]byte, 4)), "byte size overflows"},
	{"no offsets", file(`{"a":{"dtype":"F32","shape":[]}}`, make([]byte, 4)), "data_offsets must be [begin, end]"},
	{"three offsets", file(`{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4,8]}}`, make([]byte, 4)), "data_offsets must be [begin, end]"},
	{"offsets reversed", file(`{"a":{"dtype":"F32","shape":[],"data_offsets":[4,0]}}`, make([]byte, 4)), "end before they begin"},
	{"offsets beyond int64", file(`{"a":{"dtype":"F32","shape":[],"data_offsets":[18446744073709551611,18446744073709551615]}}`, make([]byte, 4)), "beyond any file"},
	{"size mismatch", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 4)), "needs 8 bytes"},
	{"hole at start", file(`{"a":{"dtype":"F32","shape":[],"data_offsets":[4,8]}}`, make([]byte, 8)), "leave bytes 0..4 unused"},
	{"hole between", file(`{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[],"data_offsets":[8,12]}}`, make([]byte, 12)), `"b": data_offsets [8,12] leave bytes 4..8 unused`},
	{"overlap", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[],"data_offsets":[4,8]}}`, make([]byte, 8)), "overlap"},
	{"same range twice", file(`{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}`, make([]byte, 4)), "overlap"},
	{"data past the end", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 4)), "cover 8 bytes of data but the file holds 4"},
	{"bytes after the tensors", file(`{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}`, make([]byte, 5)), "cover 4 bytes of data but the file holds 5"},
	{"data without tensors", file(`{}`, make([]byte, 1)), "cover 0 bytes"},
	{"empty name", file(`{"":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}`, make([]byte, 4)), "empty tensor name"},
}

func TestReadHostile(t *testing.T) {
	for _, tt := range hostileCases {
		t.Run(tt.name, func(t *testing.T) {
			l, meta, err := decodeBytes(tt.file)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Read error %v, want one containing %q", err, tt.want)
			}
			if l != nil || meta != nil {
				t.Error("Read returned data along with an error")
			}
		})
	}
}

// TestReadAccepts covers what the format allows beyond what Write makes:
// any header order, unknown fields, whitespace, null metadata, several
// empty tensors at one offset.
func TestReadAccepts(t *testing.T) {
	h := "{\n \"b\": {\"data_offsets\": [4, 8], \"shape\": [1], \"dtype\": \"F32\", \"extra\": true},\n" +
		" \"__metadata__\": null,\n \"z\": {\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},\n" +
		" \"a\": {\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},\n" +
		" \"y\": {\"dtype\":\"F16\",\"shape\":[2,0],\"data_offsets\":[4,4]}\n}\t\r\n "
	l, meta, err := decodeBytes(file(h, f32bytes(1, 2)))
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if meta != nil {
		t.Errorf("metadata %v, want none", meta)
	}
	var names []string
	for _, x := range l {
		names = append(names, x.Name)
	}
	if want := []string{"a", "y", "z", "b"}; !reflect.DeepEqual(names, want) {
		t.Errorf("order %v, want %v", names, want)
	}
	if l[0].Data[0] != 1 || l[3].Data[0] != 2 || len(l[0].Shape) != 0 {
		t.Errorf("values %v", l)
	}
}

func TestMatch(t *testing.T) {
	want := tensor.List{tensor.New("a", 2), tensor.New("b", 1, 3), tensor.New("c")}
	got := tensor.List{
		{Name: "c", Shape: []int{}, Data: []float32{3}},
		{Name: "a", Shape: []int{2}, Data: []float32{1, 2}},
		{Name: "b", Shape: []int{1, 3}, Data: []float32{4, 5, 6}},
	}
	m, err := Match(want, got)
	if err != nil {
		t.Fatal(err)
	}
	if err := want.CheckCompatible(m); err != nil {
		t.Fatal(err)
	}
	if m[0].Data[1] != 2 || m[2].Data[0] != 3 {
		t.Errorf("Match = %v", m)
	}

	bad := tensor.List{
		{Name: "a", Shape: []int{3}, Data: []float32{1, 2, 3}},
		{Name: "x", Shape: []int{1}, Data: []float32{1}},
		{Name: "c", Shape: []int{1}, Data: []float32{3}},
	}
	_, err = Match(want, bad)
	if err == nil {
		t.Fatal("Match accepted a mismatch")
	}
	for _, frag := range []string{"1 tensor(s) missing: b", "1 unexpected tensor(s): x", "a has shape [3], the model wants [2]", "c has shape [1], the model wants []"} {
		if !strings.Contains(err.Error(), frag) {
			t.Errorf("error %q lacks %q", err, frag)
		}
	}
	many := tensor.List{}
	for _, n := range []string{"p", "q", "r", "s", "t", "u", "v"} {
		many = append(many, tensor.New(n))
	}
	if _, err := Match(many, nil); err == nil || !strings.Contains(err.Error(), "7 tensor(s) missing: p, q, r, s, t and 2 more") {
		t.Errorf("Match error %v", err)
	}
	if _, err := Match(want, tensor.List{got[0], got[0]}); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("Match error %v", err)
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "model.safetensors")
	l := tensor.List{{Name: "w", Shape: []int{2}, Data: []float32{1, 2}}}
	if err := WriteFile(path, l, nil); err != nil {
		t.Fatal(err)
	}
	l[0].Data[0] = 9
	if err := WriteFile(path, l, nil); err != nil { // replaces
		t.Fatal(err)
	}
	got, _, err := ReadFile(path)
	if err != nil || got[0].Data[0] != 9 {
		t.Fatalf("ReadFile = %v, %v", got, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, %v", st.Mode(), err)
	}
	// A list Write refuses leaves the old file and no temporary behind.
	if err := WriteFile(path, tensor.List{{Name: "", Data: []float32{1}}}, nil); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("WriteFile error %v, want one naming the file", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the model", len(entries))
	}
	if got, _, err := ReadFile(path); err != nil || got[0].Data[0] != 9 {
		t.Errorf("old file damaged: %v, %v", got, err)
	}
}

func TestReadFileErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.safetensors")
	os.WriteFile(path, file(`{"fc.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 4)), 0o644)
	_, _, err := ReadFile(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `"fc.weight"`) {
		t.Errorf("error %v, want one naming the file and the tensor", err)
	}
	if _, _, err := ReadFile(filepath.Join(dir, "missing")); err == nil || !os.IsNotExist(err) {
		t.Errorf("missing file: %v", err)
	}
	if _, _, err := ReadFile(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
}

// eofReaderAt returns io.EOF with full reads at the end, as the
// io.ReaderAt contract allows.
type eofReaderAt struct{ b []byte }

func (r eofReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n := copy(p, r.b[off:])
	if off+int64(n) == int64(len(r.b)) {
		return n, io.EOF
	}
	return n, nil
}

func TestReadEOFAtEnd(t *testing.T) {
	b := encodeBytes(t, tensor.List{{Name: "w", Shape: []int{3}, Data: []float32{1, 2, 3}}}, nil)
	l, _, err := Read(eofReaderAt{b}, int64(len(b)))
	if err != nil || l[0].Data[2] != 3 {
		t.Fatalf("Read = %v, %v", l, err)
	}
	if _, _, err := Read(eofReaderAt{b[:len(b)-1]}, int64(len(b))); err == nil {
		t.Fatal("Read accepted a reader shorter than its size")
	}
}

func FuzzRead(f *testing.F) {
	for _, tt := range hostileCases {
		f.Add(tt.file)
	}
	var b bytes.Buffer
	Write(&b, tensor.List{
		{Name: "w", Shape: []int{2, 2}, Data: []float32{1, 2, 3, 4}},
		{Name: "bn.num_batches_tracked", Shape: []int{}, Data: []float32{3}},
	}, map[string]string{"format": "pt"})
	f.Add(b.Bytes())
	f.Add(file(`{"a":{"dtype":"F16","shape":[1],"data_offsets":[0,2]},"b":{"dtype":"BF16","shape":[1],"data_offsets":[2,4]}}`, []byte{0, 0x3c, 0x80, 0x3f}))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, meta, err := decodeBytes(data)
		if err != nil {
			return
		}
		names := map[string]bool{}
		for _, x := range l {
			if names[x.Name] || x.Name == "" {
				t.Fatalf("duplicate or empty name %q", x.Name)
			}
			names[x.Name] = true
			if len(x.Data) != tensor.Size(x.Shape) {
				t.Fatalf("%q: %d values for shape %v", x.Name, len(x.Data), x.Shape)
			}
		}
		// What Read accepts, Write writes back and Read reads identically
		// (counters aside: Write rounds them and refuses negatives).
		var out bytes.Buffer
		if err := Write(&out, l, meta); err != nil {
			for _, x := range l {
				if model.IsBatchCounter(x.Name) {
					return
				}
			}
			t.Fatalf("Write refused what Read returned: %v", err)
		}
		again, meta2, err := decodeBytes(out.Bytes())
		if err != nil {
			t.Fatalf("Read of Write's output: %v", err)
		}
		if len(meta) > 0 && !reflect.DeepEqual(meta, meta2) {
			t.Fatalf("metadata %v became %v", meta, meta2)
		}
		m, err := Match(l, again)
		if err != nil {
			t.Fatal(err)
		}
		for i := range l {
			if model.IsBatchCounter(l[i].Name) {
				continue
			}
			for j := range l[i].Data {
				if math.Float32bits(l[i].Data[j]) != math.Float32bits(m[i].Data[j]) {
					t.Fatalf("%q[%d]: %v became %v", l[i].Name, j, l[i].Data[j], m[i].Data[j])
				}
			}
		}
	})
}
