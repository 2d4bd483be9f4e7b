package trace

import (
	"encoding/binary"
	"math"
)

// This file builds pickles in Go for the benchmarks and large tests, so that
// no multi-megabyte fixture has to be committed. It emits the same opcodes
// CPython's protocol-2 pickler does for these shapes (compare the
// disassembly printed by testdata/gen_fixtures.py): dicts and lists are
// memoized, a repeated string is fetched back from the memo, and dict items
// go in SETITEMS batches of at most 1000.

// pyDict is an insertion-ordered Python dict.
type pyDict []pyItem

type pyItem struct{ k, v any }

type pickleWriter struct {
	buf     []byte
	memo    map[string]int // memo index of each string already written
	nextMem int
}

// pickle2 returns v pickled with protocol 2. v may be an int, int64,
// float64, string, []int64, pyDict, or a value built from them.
func pickle2(v any) []byte {
	w := &pickleWriter{memo: map[string]int{}}
	w.buf = append(w.buf, 0x80, 2)
	w.value(v)
	w.buf = append(w.buf, '.')
	return w.buf
}

func (w *pickleWriter) put() {
	i := w.nextMem
	w.nextMem++
	if i < 256 {
		w.buf = append(w.buf, 'q', byte(i))
		return
	}
	w.buf = append(w.buf, 'r')
	w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(i))
}

func (w *pickleWriter) get(i int) {
	if i < 256 {
		w.buf = append(w.buf, 'h', byte(i))
		return
	}
	w.buf = append(w.buf, 'j')
	w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(i))
}

func (w *pickleWriter) int(n int64) {
	switch {
	case n >= 0 && n < 256:
		w.buf = append(w.buf, 'K', byte(n))
	case n >= 0 && n < 65536:
		w.buf = append(w.buf, 'M', byte(n), byte(n>>8))
	case n >= math.MinInt32 && n <= math.MaxInt32:
		w.buf = append(w.buf, 'J')
		w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(int32(n)))
	default:
		w.buf = append(w.buf, 0x8a, 8)
		w.buf = binary.LittleEndian.AppendUint64(w.buf, uint64(n))
	}
}

func (w *pickleWriter) value(v any) {
	switch x := v.(type) {
	case int:
		w.int(int64(x))
	case int64:
		w.int(x)
	case float64:
		w.buf = append(w.buf, 'G')
		w.buf = binary.BigEndian.AppendUint64(w.buf, math.Float64bits(x))
	case string:
		if i, ok := w.memo[x]; ok {
			w.get(i)
			return
		}
		w.buf = append(w.buf, 'X')
		w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(len(x)))
		w.buf = append(w.buf, x...)
		w.memo[x] = w.nextMem
		w.put()
	case []int64:
		w.buf = append(w.buf, ']')
		w.put()
		switch len(x) {
		case 0:
		case 1:
			w.int(x[0])
			w.buf = append(w.buf, 'a')
		default:
			w.buf = append(w.buf, '(')
			for _, n := range x {
				w.int(n)
			}
			w.buf = append(w.buf, 'e')
		}
	case pyDict:
		w.buf = append(w.buf, '}')
		w.put()
		for start := 0; start < len(x); start += 1000 {
			batch := x[start:min(start+1000, len(x))]
			if len(batch) == 1 {
				w.value(batch[0].k)
				w.value(batch[0].v)
				w.buf = append(w.buf, 's')
				continue
			}
			w.buf = append(w.buf, '(')
			for _, it := range batch {
				w.value(it.k)
				w.value(it.v)
			}
			w.buf = append(w.buf, 'u')
		}
	default:
		panic("pickleWriter: unsupported test value")
	}
}

// syntheticCapacities is a capacity trace of n clients with varied,
// exactly reproducible speeds.
func syntheticCapacities(n int) (pyDict, []Capacity) {
	d := make(pyDict, n)
	want := make([]Capacity, n)
	for k := range n {
		c := Capacity{Computation: float64(k%997) + 0.5, Communication: 100 + float64(k%4099)*16}
		d[k] = pyItem{k, pyDict{{"computation", c.Computation}, {"communication", c.Communication}}}
		want[k] = c
	}
	return d, want
}

// syntheticBehaviors is a behavior trace of n clients, each with a few
// daily online windows in a one-week cycle.
func syntheticBehaviors(n int) (pyDict, []Behavior) {
	d := make(pyDict, n)
	want := make([]Behavior, n)
	for k := range n {
		b := Behavior{Duration: 604800, FinishTime: 604800, Model: "model-" + string(rune('A'+k%26))}
		for day := int64(0); day < int64(1+k%7); day++ {
			start := day*86400 + int64(k%86)*600
			b.Active = append(b.Active, start)
			b.Inactive = append(b.Inactive, start+3600+int64(k%5)*900)
		}
		d[k] = pyItem{k, pyDict{
			{"duration", b.Duration}, {"inactive", b.Inactive}, {"finish_time", b.FinishTime},
			{"active", b.Active}, {"model", b.Model},
		}}
		want[k] = b
	}
	return d, want
}
