package aggregate

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// blockLen is the number of elements in one block. Its float64 accumulator
// (32 KiB) stays in L1/L2 while every update's slice of the block streams
// through it once, so the accumulator never travels to memory between
// updates. On the 2-core EPYC dev machine, 4096 to 32768 cost the same CPU
// time per byte (1024 was slower in wall time); 4096 keeps blocks small enough to spread
// even small models over the workers.
const blockLen = 4096

// serialWork is the number of element-updates below which one goroutine is
// used: below it, starting goroutines costs more than it saves.
const serialWork = 1 << 18

// span is one block: elements [lo, hi) of tensor t, which start at element
// off of the flattened model. Blocks never cross tensors.
type span struct{ t, lo, hi, off int }

// of returns block s of model x, resliced to n elements (n = s.hi-s.lo; the
// caller's n lets the compiler drop bounds checks in loops over n).
func (s span) of(x tensor.List, n int) []float32 { return x[s.t].Data[s.lo:s.hi][:n] }

// spans cuts the model with ref's shapes into blocks.
func spans(ref tensor.List) []span {
	var out []span
	off := 0
	for t, x := range ref {
		for lo := 0; lo < len(x.Data); lo += blockLen {
			hi := min(lo+blockLen, len(x.Data))
			out = append(out, span{t, lo, hi, off + lo})
		}
		off += len(x.Data)
	}
	return out
}

// forEachSpan calls fn(worker, i) exactly once for every i in [0, n), on
// goroutines numbered 0..workers-1 (from numWorkers, so the caller can size
// per-worker scratch before it starts). Workers claim
// blocks dynamically; since each block's arithmetic is self-contained, which
// worker runs it cannot change the result.
func forEachSpan(n, workers int, fn func(worker, i int)) {
	if workers <= 1 {
		for i := range n {
			fn(0, i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(w, i)
			}
		})
	}
	wg.Wait()
}

// forEachBlock calls fn(i, s, scratch) once for every block s = spans(ref)[i],
// on as many goroutines as numWorkers gives for k updates; scratch is the
// calling worker's own buffer of scratchLen float64s. fn returns false when
// its block went non-finite: the step fails anyway, so no further block is
// started. forEachBlock reports whether every call returned true.
func forEachBlock(ref tensor.List, k, scratchLen int, fn func(i int, s span, scratch []float64) bool) bool {
	sp := spans(ref)
	workers := numWorkers(len(sp), ref.NumElements(), k)
	scratch := make([][]float64, workers)
	for w := range scratch {
		scratch[w] = make([]float64, scratchLen)
	}
	var bad atomic.Bool
	forEachSpan(len(sp), workers, func(w, i int) {
		if !bad.Load() && !fn(i, sp[i], scratch[w]) {
			bad.Store(true)
		}
	})
	return !bad.Load()
}

// maxPartials bounds the float64 partial sums reduceBlocks keeps (64 MiB).
const maxPartials = 1 << 23

// reduceBlocks returns total[v] = Σ over every block s of ref's model of
// what fn(s, part) adds to part[v], for v in [0, width); k is the number
// of updates fn reads per element. Blocks are summed in order within a
// fixed number of groups (at most 64, fewer when width is large, never
// depending on the worker count) and the groups in order, so the totals
// are bit-identical for any GOMAXPROCS.
func reduceBlocks(ref tensor.List, k, width int, fn func(s span, part []float64)) []float64 {
	sp := spans(ref)
	groups := min(len(sp), 64, max(1, maxPartials/max(1, width)))
	parts := make([]float64, groups*width)
	forEachSpan(groups, numWorkers(groups, ref.NumElements(), k), func(_, g int) {
		part := parts[g*width : (g+1)*width]
		for i := g * len(sp) / groups; i < (g+1)*len(sp)/groups; i++ {
			fn(sp[i], part)
		}
	})
	total := make([]float64, width)
	for g := range groups {
		for v, x := range parts[g*width : (g+1)*width] {
			total[v] += x
		}
	}
	return total
}

// sqDist is Σ (x[j] − y[j])² in float64, in element order (differences of
// float32 values are exact in float64; the square is rounded explicitly so
// it never fuses into an FMA). y must be at least as long as x.
func sqDist(x, y []float32) float64 {
	y = y[:len(x)]
	var s float64
	for j := range x {
		d := float64(x[j]) - float64(y[j])
		s += float64(d * d)
	}
	return s
}

// numWorkers picks the goroutine count for n blocks holding elems elements
// in all, each read from k updates.
func numWorkers(n, elems, k int) int {
	if elems*k < serialWork {
		return 1
	}
	return max(1, min(runtime.GOMAXPROCS(0), n))
}

// WeightedMean sets dst to the sample-weighted mean of the updates' weights,
// dst = Σ n_i w_i / Σ n_i, accumulated in float64 in the updates' order and
// rounded once to float32. The result is bit-identical for any GOMAXPROCS.
//
// dst supplies the names and shapes every update must have. It may be one of
// the updates' own Weights (each block is read completely before it is
// written) but must not otherwise overlap them. Every NumSamples must be
// positive and every value finite; the error names the first offending
// client in order (see ClientError). On error dst's contents are
// unspecified, except that blocks whose mean would be non-finite are left
// as they were.
func WeightedMean(dst tensor.List, updates []Update) error {
	if err := checkModel(dst); err != nil {
		return fmt.Errorf("aggregate: weighted mean: destination: %w", err)
	}
	weights, total, err := checkUpdates(dst, updates)
	if err == nil {
		err = weightedMean(dst, updates, weights, total)
	}
	if err != nil {
		return fmt.Errorf("aggregate: weighted mean: %w", err)
	}
	return nil
}

// weightedMean is WeightedMean after validation: weights and total are
// from checkUpdates.
func weightedMean(dst tensor.List, updates []Update, weights []float64, total float64) error {
	ok := forEachBlock(dst, len(updates), blockLen, func(_ int, s span, acc []float64) bool {
		acc = acc[:s.hi-s.lo]
		weightedSum(acc, updates, weights, s)
		// Check the whole block before writing any of it: when dst is
		// one of the updates, a NaN mean written over it would make
		// the error blame that update instead of the one that sent
		// the NaN. f-f is 0 for finite f and NaN for NaN and ±Inf;
		// finite inputs have a finite mean, so this finds bad inputs
		// without a separate pass over the data.
		for j, v := range acc {
			acc[j] = v / total
			if f := float32(acc[j]); f-f != 0 {
				return false
			}
		}
		out := s.of(dst, len(acc))
		for j, v := range acc {
			out[j] = float32(v)
		}
		return true
	})
	if !ok {
		if err := firstNonFinite(updates); err != nil {
			return err
		}
		return errors.New("mean overflows float32")
	}
	return nil
}

// weightedSum sets acc[j] = Σ_i w[i]·float64(update_i[s.lo+j]), summed
// in update order.
//
// Updates are taken four at a time so each accumulator element is loaded and
// stored once per four updates. The sum is still written left to right,
// acc + p0 + p1 + p2 + p3, which Go evaluates as (((acc+p0)+p1)+p2)+p3: the
// same order as a plain loop over the updates. Each product is rounded by an
// explicit float64 conversion, which the spec says prevents fusing it into
// an FMA, so amd64, arm64 and every GOAMD64 level give the same bits.
// (Unrolling over j, eight updates at a time and math.FMA measured the same
// or slower.)
func weightedSum(acc []float64, updates []Update, w []float64, s span) {
	clear(acc)
	n := len(acc)
	i := 0
	for ; i+4 <= len(updates); i += 4 {
		a, b, c, d := s.of(updates[i].Weights, n), s.of(updates[i+1].Weights, n), s.of(updates[i+2].Weights, n), s.of(updates[i+3].Weights, n)
		wa, wb, wc, wd := w[i], w[i+1], w[i+2], w[i+3]
		for j := range acc {
			acc[j] = acc[j] + float64(wa*float64(a[j])) + float64(wb*float64(b[j])) +
				float64(wc*float64(c[j])) + float64(wd*float64(d[j]))
		}
	}
	for ; i < len(updates); i++ {
		a := s.of(updates[i].Weights, n)
		wa := w[i]
		for j := range acc {
			acc[j] = acc[j] + float64(wa*float64(a[j]))
		}
	}
}
