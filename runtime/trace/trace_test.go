package trace

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

// Expected contents of the fixtures written by testdata/gen_fixtures.py,
// ordered by client key.
var (
	fixtureCapacities = []Capacity{
		{0.5, 512},         // key 0
		{10, 1000},         // key 1
		{7, 2048},          // key 2 (ints in the trace)
		{30.5, 3000.25},    // key 3
		{100.125, 10000.5}, // key 10
	}
	fixtureBehaviors = []Behavior{
		{Duration: 1000, FinishTime: 1000, Active: []int64{100}, Inactive: []int64{500}, Model: "SM-G960F"}, // key 2
		{Duration: 86400, FinishTime: 86400, Active: []int64{}, Inactive: []int64{}, Model: ""},             // key 5
		{Duration: 211625, FinishTime: 518400, Active: []int64{14400, 122400, 250000},
			Inactive: []int64{65600, 155000, 300000}, Model: "CPH1801"}, // key 7
	}
)

func TestLoadCapacitiesFixtures(t *testing.T) {
	for _, file := range []string{"capacity_p0.pkl", "capacity_p2.pkl", "capacity_p4.pkl", "capacity_p5.pkl", "capacity.json"} {
		t.Run(file, func(t *testing.T) {
			got, err := LoadCapacities(filepath.Join("testdata", file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, fixtureCapacities) {
				t.Errorf("got %v, want %v", got, fixtureCapacities)
			}
		})
	}
}

func TestLoadBehaviorsFixtures(t *testing.T) {
	for _, file := range []string{"behavior_p0.pkl", "behavior_p2.pkl", "behavior_p4.pkl", "behavior_p5.pkl", "behavior.json"} {
		t.Run(file, func(t *testing.T) {
			got, err := LoadBehaviors(filepath.Join("testdata", file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, fixtureBehaviors) {
				t.Errorf("got %+v, want %+v", got, fixtureBehaviors)
			}
		})
	}
}

// TestLoadManyFrames reads a CPython protocol-4 pickle of 2500 clients: it
// spans two frames, several SETITEMS batches and memo indices above 255.
func TestLoadManyFrames(t *testing.T) {
	got, err := LoadCapacities("testdata/capacity_many_p4.pkl")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2500 {
		t.Fatalf("got %d entries, want 2500", len(got))
	}
	for k, c := range got {
		want := Capacity{float64(k) + 0.25, 1000 + 2*float64(k)}
		if c != want {
			t.Fatalf("entry %d = %v, want %v", k, c, want)
		}
	}
}

func TestStringKeys(t *testing.T) {
	tests := []struct {
		name string
		load func() ([]Capacity, error)
	}{
		{"pickle", func() ([]Capacity, error) { return LoadCapacities("testdata/capacity_strkeys_p4.pkl") }},
		{"json", func() ([]Capacity, error) {
			return ParseCapacities([]byte(`{"4": {"computation": 1, "communication": 5}, "-1": {"computation": 2, "communication": 6}}`), "x")
		}},
	}
	want := []Capacity{{2, 6}, {1, 5}} // key -1 sorts before key 4
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.load()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

// TestGoWriterMatchesLoader checks the benchmark's pickle generator against
// the loader, so that the benchmark measures a realistic, valid input.
func TestGoWriterMatchesLoader(t *testing.T) {
	capDict, wantCaps := syntheticCapacities(3000)
	gotCaps, err := ParseCapacities(pickle2(capDict), "synthetic")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotCaps, wantCaps) {
		t.Error("capacities differ from what was written")
	}
	behDict, wantBeh := syntheticBehaviors(3000)
	gotBeh, err := ParseBehaviors(pickle2(behDict), "synthetic")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotBeh, wantBeh) {
		t.Error("behaviors differ from what was written")
	}
}

func TestJSONAcceptsIntegralFloats(t *testing.T) {
	got, err := ParseBehaviors([]byte(` {"1": {"finish_time": 100.0, "active": [1.0, 5], "inactive": [2, 6e1]}}`), "x")
	if err != nil {
		t.Fatal(err)
	}
	want := []Behavior{{FinishTime: 100, Active: []int64{1, 5}, Inactive: []int64{2, 60}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	fixture := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	capOf := func(data []byte) error { _, err := ParseCapacities(data, "trace.in"); return err }
	behOf := func(data []byte) error { _, err := ParseBehaviors(data, "trace.in"); return err }
	// A BINUNICODE claiming 4 GB in a 12-byte file must not be allocated.
	hugeString := append([]byte{0x80, 2, 'X'}, binary.LittleEndian.AppendUint32(nil, 0xFFFFFFF0)...)
	hugeFrame := append([]byte{0x80, 4, 0x95}, binary.LittleEndian.AppendUint64(nil, 1<<40)...)

	tests := []struct {
		name  string
		parse func([]byte) error
		data  []byte
		want  []string // substrings of the error
	}{
		{"empty file", capOf, nil, []string{"trace.in", "empty"}},
		{"whitespace only", capOf, []byte(" \n\t"), []string{"empty"}},
		{"garbage", capOf, []byte("hello"), []string{"unrecognized format"}},
		{"pickle top level list", capOf, fixture("bad_toplevel_list_p2.pkl"), []string{"top level is a list"}},
		{"json top level array", capOf, []byte(`[1, 2]`), []string{"top level is a JSON array"}},
		{"pickle empty dict", capOf, pickle2(pyDict{}), []string{"no clients"}},
		{"json empty object", behOf, []byte(`{}`), []string{"no clients"}},
		{"missing computation", capOf, fixture("bad_missing_computation_p4.pkl"), []string{"client 1", "missing 'computation'"}},
		{"behavior file as capacity", capOf, fixture("behavior_p2.pkl"), []string{"looks like a client_behave_trace"}},
		{"capacity file as behavior", behOf, fixture("capacity_p2.pkl"), []string{"looks like a client_device_capacity"}},
		{"nan computation", capOf, fixture("bad_nan_p2.pkl"), []string{"client 1", "'computation'", "NaN"}},
		{"big key", capOf, fixture("bad_bigkey_p2.pkl"), []string{"1180591620717411303424", "out of range"}},
		{"object opcode", capOf, fixture("bad_object_p4.pkl"), []string{"STACK_GLOBAL", "rebuilds a Python object"}},
		{"unsorted intervals", behOf, fixture("bad_unsorted_p4.pkl"), []string{"client 1", "not sorted"}},
		{"string number", capOf, []byte(`{"3": {"computation": "12", "communication": 5}}`), []string{"client 3", "'computation'", `str "12"`}},
		{"bool number", capOf, []byte(`{"3": {"computation": true, "communication": 5}}`), []string{"client 3", "bool true"}},
		{"null number", capOf, []byte(`{"3": {"computation": null, "communication": 5}}`), []string{"missing 'computation'"}},
		{"negative communication", capOf, []byte(`{"3": {"computation": 1, "communication": -5}}`), []string{"client 3", "'communication' must be", "> 0"}},
		{"zero communication", capOf, pickle2(pyDict{{9, pyDict{{"computation", 1.0}, {"communication", 0.0}}}}), []string{"client 9", "'communication'"}},
		{"negative computation", capOf, []byte(`{"3": {"computation": -1, "communication": 5}}`), []string{"'computation' must be"}},
		{"number out of range", capOf, []byte(`{"3": {"computation": 1e400, "communication": 5}}`), []string{"out of range"}},
		{"entry not a dict", capOf, []byte(`{"3": [1, 2]}`), []string{"client 3", "list, want a dict"}},
		{"pickle entry not a dict", capOf, pickle2(pyDict{{4, 2.5}}), []string{"client 4", "float, want a dict"}},
		{"non-int key", capOf, []byte(`{"abc": {"computation": 1, "communication": 5}}`), []string{`client "abc"`, "not an integer"}},
		{"pickle non-int string key", capOf, pickle2(pyDict{{"x1", pyDict{}}}), []string{`client "x1"`}},
		{"duplicate key", capOf, []byte(`{"1": {"computation": 1, "communication": 5}, "01": {"computation": 1, "communication": 5}}`), []string{"client 1 appears twice"}},
		{"json trailing data", capOf, []byte(`{"1": {"computation": 1, "communication": 5}} {}`), []string{"after the top-level object"}},
		{"json truncated", capOf, []byte(`{"1": {"computation": 1, "comm`), []string{"client 1", "invalid JSON"}},
		{"lengths differ", behOf, []byte(`{"2": {"finish_time": 10, "active": [1, 3], "inactive": [2]}}`), []string{"client 2", "'active' has 2 entries but 'inactive' has 1"}},
		{"interval backwards", behOf, []byte(`{"2": {"finish_time": 10, "active": [5], "inactive": [2]}}`), []string{"ends before it starts"}},
		{"overlapping intervals", behOf, []byte(`{"2": {"finish_time": 10, "active": [1, 3], "inactive": [5, 8]}}`), []string{"not sorted"}},
		{"missing finish_time", behOf, []byte(`{"2": {"active": [], "inactive": []}}`), []string{"client 2", "missing 'finish_time'"}},
		{"missing inactive", behOf, []byte(`{"2": {"finish_time": 5, "active": []}}`), []string{"missing 'inactive'"}},
		{"negative finish_time", behOf, []byte(`{"2": {"finish_time": -5, "active": [], "inactive": []}}`), []string{"'finish_time' must be >= 0"}},
		{"fractional interval", behOf, []byte(`{"2": {"finish_time": 5, "active": [1.5], "inactive": [2]}}`), []string{"'active'[0]", "float 1.5"}},
		{"active not a list", behOf, []byte(`{"2": {"finish_time": 5, "active": 3, "inactive": [2]}}`), []string{"'active' is a number"}},
		{"model not a string", behOf, []byte(`{"2": {"finish_time": 5, "active": [], "inactive": [], "model": 7}}`), []string{"'model' is a number"}},
		{"truncated pickle", capOf, fixture("capacity_p2.pkl")[:60], []string{"invalid pickle"}},
		{"no STOP", capOf, []byte{0x80, 2, '}'}, []string{"no STOP"}},
		{"huge string length", capOf, hugeString, []string{"needs 4294967280 bytes"}},
		{"huge frame", capOf, hugeFrame, []string{"frame"}},
		{"protocol 6", capOf, []byte{0x80, 6, '}', '.'}, []string{"unsupported protocol 6"}},
		{"unknown opcode", capOf, []byte{0x80, 2, 0xff, '.'}, []string{"unknown opcode 0xff"}},
		{"set opcode", capOf, []byte{0x80, 4, 0x8f, '.'}, []string{"EMPTY_SET"}},
		{"stack underflow", capOf, []byte{0x80, 2, 'u', '.'}, []string{"invalid pickle"}},
		{"odd dict", capOf, []byte("(K\x01d."), []string{"invalid pickle"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.parse(tt.data)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), "trace.in") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

// A missing file, a device and a FIFO are each one error naming the
// file; neither of the last two is read (one has no end, the other blocks
// in open until a writer comes).
func TestLoadMissingFile(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo.pkl")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(t.TempDir(), "nope.pkl"), "/dev/zero", fifo} {
		for name, load := range map[string]func(string) error{
			"capacities": func(p string) error { _, err := LoadCapacities(p); return err },
			"behaviors":  func(p string) error { _, err := LoadBehaviors(p); return err },
		} {
			err := load(path)
			if err == nil || !strings.Contains(err.Error(), path) {
				t.Errorf("%s: error %v does not name %s", name, err, path)
			}
		}
	}
}

// TestNoPanicOnDamagedFixtures parses every prefix and many single-byte
// corruptions of each small fixture. Any outcome but a panic is fine.
func TestNoPanicOnDamagedFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) > 1024 {
			continue
		}
		for i := 0; i <= len(data); i++ {
			_, _ = ParseCapacities(data[:i], f)
			_, _ = ParseBehaviors(data[:i], f)
		}
		buf := make([]byte, len(data))
		for i := range data {
			for _, b := range []byte{0x00, 0xff, '(', 'u', 'a', 0x8a, 0x95, '.'} {
				copy(buf, data)
				buf[i] = b
				_, _ = ParseCapacities(buf, f)
				_, _ = ParseBehaviors(buf, f)
			}
		}
	}
}

func TestOnline(t *testing.T) {
	b := Behavior{FinishTime: 100, Active: []int64{10, 50}, Inactive: []int64{20, 60}}
	tests := []struct {
		name string
		b    Behavior
		t    float64
		want bool
	}{
		{"before first interval", b, 5, false},
		{"start is inclusive", b, 10, true},
		{"inside", b, 15.5, true},
		{"end is inclusive", b, 20, true},
		{"between intervals", b, 20.5, false},
		{"second interval", b, 55, true},
		{"after last", b, 99, false},
		{"next cycle", b, 215, true},
		{"next cycle gap", b, 230, false},
		{"negative time wraps like Python", b, -45, true}, // -45 mod 100 = 55
		{"NaN", b, math.NaN(), false},
		{"infinity", b, math.Inf(1), false},
		{"no finish time: always online", Behavior{}, 12345, true},
		{"negative finish time: always online", Behavior{FinishTime: -1}, 3, true},
		{"no intervals: never online", Behavior{FinishTime: 10}, 3, false},
		{"unvalidated, lists differ", Behavior{FinishTime: 10, Active: []int64{1, 2}, Inactive: []int64{5}}, 3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.b.Online(tt.t); got != tt.want {
				t.Errorf("Online(%v) = %v, want %v", tt.t, got, tt.want)
			}
		})
	}
}

func TestCompletionTime(t *testing.T) {
	tests := []struct {
		name                  string
		c                     Capacity
		batch, steps          int
		modelBytes            int64
		wantCompute, wantComm float64
	}{
		// 3*30*20*10/1000 = 18 s; 2 * (1e6*8/1000 kbit) / 800 kbit/s = 20 s.
		{"fedscale defaults", Capacity{10, 800}, 30, 20, 1_000_000, 18, 20},
		{"no model", Capacity{2, 1}, 1, 1, 0, 0.006, 0},
		{"default capacity", DefaultCapacity, 10, 5, 125_000, 3, 0.2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			compute, comm := CompletionTime(tt.c, tt.batch, tt.steps, tt.modelBytes)
			if math.Abs(compute-tt.wantCompute) > 1e-9 || math.Abs(comm-tt.wantComm) > 1e-9 {
				t.Errorf("got (%v, %v), want (%v, %v)", compute, comm, tt.wantCompute, tt.wantComm)
			}
		})
	}
}

func TestDefaultCapacityValid(t *testing.T) {
	if err := DefaultCapacity.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestDetectFormat(t *testing.T) {
	tests := []struct {
		in   string
		want format
	}{
		{"", formatEmpty},
		{"\x80\x04", formatPickle},
		{"(dp0\n", formatPickle},
		{"}q\x00", formatPickle},
		{"  \n{", formatJSON},
		{"\xef\xbb\xbf{", formatJSON},
		{"[", formatJSON},
		{"#!", formatUnknown},
	}
	for _, tt := range tests {
		if got := detectFormat([]byte(tt.in)); got != tt.want {
			t.Errorf("detectFormat(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestMemoBomb reads a 2 MB behavior trace whose every client is one
// memoized entry with 4000 intervals: converting it would copy more than
// 10 GB of intervals. The decoder's budget refuses it first, naming the
// file.
func TestMemoBomb(t *testing.T) {
	var b []byte
	b = append(b, 0x80, 4, '}', 0x94, '(') // the trace dict, then MARK for its items
	entry := []byte("}(\x8c\x0bfinish_time\x94J\x00\x00\x01\x00\x8c\x06active](")
	for i := range 4000 {
		entry = append(entry, 'J')
		entry = binary.LittleEndian.AppendUint32(entry, uint32(2*i))
	}
	entry = append(entry, "e\x94\x8c\x08inactiveh\x02u"...) // active is memo 2; inactive the same list
	b = append(b, 'K', 0)
	b = append(b, entry...)
	b = append(b, 0x94) // the entry is memo 3
	for k := 1; len(b) < 2<<20; k++ {
		b = append(b, 'J')
		b = binary.LittleEndian.AppendUint32(b, uint32(k))
		b = append(b, 'h', 3)
	}
	b = append(b, 'u', '.')
	_, err := ParseBehaviors(b, "bomb.pkl")
	if err == nil || !strings.Contains(err.Error(), "bomb.pkl") || !strings.Contains(err.Error(), "exceeds the decoding budget") {
		t.Fatalf("error %v, want the budget's, naming the file", err)
	}
}
