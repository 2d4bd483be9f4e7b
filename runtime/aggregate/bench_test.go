package aggregate

import (
	"bytes"
	"runtime"
	"sync"
	"testing"
	"unsafe"

	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// The benchmark round: 100 updates of a 10M-parameter model (4 GB of
// updates), shared by every benchmark so it is built once per process.
const (
	benchClients = 100
	benchParams  = 10_000_000
)

var benchSizes = []int{4_000_000, benchParams - 4_000_000 - 1000, 1000}

var benchData = sync.OnceValues(func() (tensor.List, []Update) {
	model := func(seed uint64) tensor.List {
		l := make(tensor.List, len(benchSizes))
		for i, n := range benchSizes {
			l[i] = tensor.New("t"+string(rune('0'+i)), n)
			fill(l[i].Data, seed*31+uint64(i))
		}
		return l
	}
	global := model(0)
	updates := make([]Update, benchClients)
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				updates[i] = Update{ClientID: int64(i), Weights: model(uint64(i + 1)),
					NumSamples: int64(50 + i), Loss: 0.5 + float64(i)/100}
			}
		})
	}
	for i := range updates {
		next <- i
	}
	close(next)
	wg.Wait()
	return global, updates
})

// fill writes cheap pseudo-random values in [-1, 1) (xorshift: math/rand
// would make building 4 GB slower than the benchmarks themselves).
func fill(d []float32, seed uint64) {
	x := seed*0x9E3779B97F4A7C15 | 1
	for j := range d {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		d[j] = float32(int32(x>>32)) * (1.0 / (1 << 31))
	}
}

func benchRound(b *testing.B) (tensor.List, []Update) {
	if testing.Short() {
		b.Skip("needs 4 GB of updates")
	}
	global, updates := benchData()
	runtime.GC()
	return global, updates
}

// BenchmarkWeightedMean100x10M: bytes = the updates read plus the mean
// written.
func BenchmarkWeightedMean100x10M(b *testing.B) {
	_, updates := benchRound(b)
	dst := updates[0].Weights.ZerosLike()
	b.SetBytes(int64(benchClients+1) * benchParams * 4)
	for b.Loop() {
		if err := WeightedMean(dst, updates); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMemoryBandwidth is this machine's ceiling for the same 4 GB on
// the same goroutine count, so WeightedMean's MB/s can be read as a fraction
// of it:
//
//   - read: bytes.Count over every update, which runs the runtime's
//     vectorized (AVX2) loop, so it streams at memory speed.
//   - copy: the runtime's memmove from every update into a 400 MB buffer
//     (bytes = read + written), STREAM's "copy".
//   - sum-go: a plain Go loop summing float32s with eight independent
//     chains: what scalar Go code (like the kernel) can stream.
func BenchmarkMemoryBandwidth(b *testing.B) {
	_, updates := benchRound(b)
	const chunk = 1 << 20
	var chunks [][]float32
	for _, u := range updates {
		for _, t := range u.Weights {
			for lo := 0; lo < len(t.Data); lo += chunk {
				chunks = append(chunks, t.Data[lo:min(lo+chunk, len(t.Data))])
			}
		}
	}
	workers := runtime.GOMAXPROCS(0)
	parallel := func(f func(w, i int, s []float32)) {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := w; i < len(chunks); i += workers {
					f(w, i, chunks[i])
				}
			})
		}
		wg.Wait()
	}
	total := int64(benchClients) * benchParams * 4
	sink := make([]int, workers*16) // one cache line per worker
	b.Run("read", func(b *testing.B) {
		b.SetBytes(total)
		for b.Loop() {
			parallel(func(w, _ int, s []float32) {
				raw := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), 4*len(s))
				sink[w*16] += bytes.Count(raw, []byte{0x7f})
			})
		}
	})
	b.Run("copy", func(b *testing.B) {
		// 400 MB, far beyond the last-level cache, so writes reach memory.
		const slots = 100
		dst := make([]float32, slots*chunk)
		b.SetBytes(2 * total)
		for b.Loop() {
			parallel(func(_, i int, s []float32) {
				copy(dst[(i%slots)*chunk:], s)
			})
		}
	})
	b.Run("sum-go", func(b *testing.B) {
		b.SetBytes(total)
		sums := make([]float32, workers*16)
		for b.Loop() {
			parallel(func(w, _ int, s []float32) {
				var a0, a1, a2, a3, a4, a5, a6, a7 float32
				j := 0
				for ; j+8 <= len(s); j += 8 {
					a0 += s[j]
					a1 += s[j+1]
					a2 += s[j+2]
					a3 += s[j+3]
					a4 += s[j+4]
					a5 += s[j+5]
					a6 += s[j+6]
					a7 += s[j+7]
				}
				for ; j < len(s); j++ {
					a0 += s[j]
				}
				sums[w*16] += a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7
			})
		}
	})
}

// BenchmarkStepFedYogi100x10M: bytes = updates and global read, the new
// model written, and m and v read and written.
func BenchmarkStepFedYogi100x10M(b *testing.B) {
	global, updates := benchRound(b)
	s := mustNewB(b, withPolicy(DefaultOptions(), PolicyFedYogi))
	b.SetBytes(int64(benchClients+6) * benchParams * 4)
	for b.Loop() {
		if _, err := s.Step(global, updates, 0.05); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStepQFedAvg100x10M: bytes = updates and global read, the new
// model written, and the float64 partial sums written and read back.
func BenchmarkStepQFedAvg100x10M(b *testing.B) {
	global, updates := benchRound(b)
	s := mustNewB(b, withPolicy(DefaultOptions(), PolicyQFedAvg))
	b.SetBytes(int64(benchClients+2+4) * benchParams * 4)
	for b.Loop() {
		if _, err := s.Step(global, updates, 0.05); err != nil {
			b.Fatal(err)
		}
	}
}

func mustNewB(b *testing.B, opt Options) Server {
	b.Helper()
	s, err := New(opt)
	if err != nil {
		b.Fatal(err)
	}
	return s
}
