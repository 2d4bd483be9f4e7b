package aggregate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/fedscale/fedscale-go/runtime/tensor"
)

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 1)) }

// randomModel has one tensor per size, named t0, t1, ..., with values of
// mixed signs and magnitudes so that rounding differences would show.
func randomModel(rng *rand.Rand, sizes []int) tensor.List {
	l := make(tensor.List, len(sizes))
	for i, n := range sizes {
		l[i] = tensor.New(fmt.Sprintf("t%d", i), n)
		for j := range l[i].Data {
			l[i].Data[j] = float32(rng.NormFloat64() * math.Exp(rng.Float64()*8-4))
		}
	}
	return l
}

func randomUpdates(rng *rand.Rand, k int, sizes []int) []Update {
	u := make([]Update, k)
	for i := range u {
		u[i] = Update{ClientID: int64(100 + i), Weights: randomModel(rng, sizes),
			NumSamples: 1 + rng.Int64N(5000), Loss: rng.Float64() * 3}
	}
	return u
}

// sameBits fails unless a and b hold bit-identical values.
func sameBits(t *testing.T, what string, a, b tensor.List) {
	t.Helper()
	if err := a.CheckCompatible(b); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	for i := range a {
		for j := range a[i].Data {
			if math.Float32bits(a[i].Data[j]) != math.Float32bits(b[i].Data[j]) {
				t.Fatalf("%s: %s[%d] = %v vs %v", what, a[i].Name, j, a[i].Data[j], b[i].Data[j])
			}
		}
	}
}

// naiveMean is the textbook definition: per element, a float64 sum over the
// updates in order, divided by the total sample count.
func naiveMean(updates []Update) tensor.List {
	out := updates[0].Weights.ZerosLike()
	var total float64
	for _, u := range updates {
		total += float64(u.NumSamples)
	}
	for t := range out {
		for j := range out[t].Data {
			var s float64
			for _, u := range updates {
				s += float64(float64(u.NumSamples) * float64(u.Weights[t].Data[j]))
			}
			out[t].Data[j] = float32(s / total)
		}
	}
	return out
}

// Sizes that give full blocks, a partial block and tiny tensors; update
// counts that exercise the four-at-a-time loop and its remainder.
var meanCases = []struct {
	k     int
	sizes []int
}{
	{1, []int{3}},
	{3, []int{blockLen + 1, 7}},
	{4, []int{2*blockLen + 5, 1, 33}},
	{7, []int{5, 70001, 12345}},
	{13, []int{3 * blockLen}},
}

func TestWeightedMeanMatchesNaive(t *testing.T) {
	for i, tc := range meanCases {
		t.Run(fmt.Sprintf("k%d", tc.k), func(t *testing.T) {
			updates := randomUpdates(newRand(uint64(i)), tc.k, tc.sizes)
			got := updates[0].Weights.ZerosLike()
			if err := WeightedMean(got, updates); err != nil {
				t.Fatal(err)
			}
			// Same summation order and roundings, so the same bits.
			sameBits(t, "WeightedMean vs naive", got, naiveMean(updates))
		})
	}
}

// dst may be one of the updates' own Weights.
func TestWeightedMeanInPlace(t *testing.T) {
	updates := randomUpdates(newRand(11), 5, []int{3*blockLen + 9, 4})
	want := naiveMean(updates)
	if err := WeightedMean(updates[2].Weights, updates); err != nil {
		t.Fatal(err)
	}
	sameBits(t, "in place", updates[2].Weights, want)
}

// With dst aliasing an earlier update, the error must still name the
// client that sent the NaN, not the one whose weights are being overwritten.
func TestWeightedMeanInPlaceNamesOffender(t *testing.T) {
	updates := randomUpdates(newRand(12), 5, []int{3*blockLen + 9, 4})
	updates[3].Weights[0].Data[2*blockLen+1] = float32(math.NaN())
	for _, procs := range []int{1, 2} {
		withProcs(procs, func() {
			checkErr(t, WeightedMean(updates[1].Weights, updates), updates[3].ClientID, "non-finite")
		})
	}
}

// Two clients send NaNs in different blocks, the later client in the
// earlier block: every policy must name the earlier client, whichever block
// a worker reaches first.
func TestFirstBadClientNamed(t *testing.T) {
	sizes := []int{8 * blockLen}
	rng := newRand(13)
	global := randomModel(rng, sizes)
	updates := randomUpdates(rng, 6, sizes)
	updates[1].Weights[0].Data[7*blockLen] = float32(math.Inf(1))
	updates[4].Weights[0].Data[3] = float32(math.NaN())
	for _, p := range []string{PolicyFedAvg, PolicyFedYogi, PolicyQFedAvg} {
		for _, procs := range []int{1, 2, 3} {
			withProcs(procs, func() {
				_, err := mustNew(t, withPolicy(DefaultOptions(), p)).Step(global, updates, 0.1)
				checkErr(t, err, updates[1].ClientID, "non-finite")
			})
		}
	}
}

// withProcs runs f under GOMAXPROCS n.
func withProcs(n int, f func()) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(n))
	f()
}

// Every policy's result, and FedYogi's state, must not depend on the worker
// count. 3 procs on a 2-core machine gives an uneven split of the blocks.
func TestDeterministicAcrossGOMAXPROCS(t *testing.T) {
	sizes := []int{5, 70001, 12345, 3 * blockLen}
	rng := newRand(42)
	global := randomModel(rng, sizes)
	updates := randomUpdates(rng, 9, sizes)
	next := randomUpdates(rng, 6, sizes)
	for _, p := range []string{PolicyFedAvg, PolicyFedYogi, PolicyQFedAvg} {
		t.Run(p, func(t *testing.T) {
			var ref []tensor.List
			for _, procs := range []int{1, 2, 3} {
				var got []tensor.List
				withProcs(procs, func() {
					s := mustNew(t, withPolicy(DefaultOptions(), p))
					x1, err := s.Step(global, updates, 0.05)
					if err != nil {
						t.Fatal(err)
					}
					// A second step exercises FedYogi's carried state.
					x2, err := s.Step(x1, next, 0.05)
					if err != nil {
						t.Fatal(err)
					}
					got = []tensor.List{x1, x2, s.State()}
				})
				if ref == nil {
					ref = got
					continue
				}
				for i := range got {
					sameBits(t, fmt.Sprintf("GOMAXPROCS %d, output %d", procs, i), got[i], ref[i])
				}
			}
		})
	}
	t.Run("WeightedMean", func(t *testing.T) {
		var ref tensor.List
		for _, procs := range []int{1, 2, 3} {
			got := global.ZerosLike()
			withProcs(procs, func() {
				if err := WeightedMean(got, updates); err != nil {
					t.Fatal(err)
				}
			})
			if ref == nil {
				ref = got
				sameBits(t, "vs naive", got, naiveMean(updates))
				continue
			}
			sameBits(t, fmt.Sprintf("GOMAXPROCS %d", procs), got, ref)
		}
	})
}

// Yogi and q-FedAvg on larger random models against a direct float64
// transcription of the formulas (loose tolerance: only the kernels'
// blocking and loop structure is under test here).
func TestPoliciesMatchReference(t *testing.T) {
	sizes := []int{blockLen + 3, 17}
	rng := newRand(5)
	global := randomModel(rng, sizes)
	updates := randomUpdates(rng, 6, sizes)
	mean := naiveMean(updates)
	const lr = 0.05

	t.Run("fed-yogi", func(t *testing.T) {
		opt := withPolicy(DefaultOptions(), PolicyFedYogi)
		s := mustNew(t, opt)
		got, err := s.Step(global, updates, lr)
		if err != nil {
			t.Fatal(err)
		}
		for ti := range global {
			for j, g := range global[ti].Data {
				d := float64(mean[ti].Data[j]) - float64(g)
				m := (1 - opt.YogiBeta) * d
				v0 := opt.YogiTau * opt.YogiTau
				v := v0 - (1-opt.YogiBeta2)*d*d*sign(v0-d*d)
				want := float64(g) + opt.YogiEta*m/(math.Sqrt(v)+opt.YogiTau)
				checkClose(t, got[ti].Data[j], want, 1e-5)
			}
		}
	})
	t.Run("q-fedavg", func(t *testing.T) {
		const q = 1.5
		s := mustNew(t, Options{Policy: PolicyQFedAvg, QFedQ: q})
		got, err := s.Step(global, updates, lr)
		if err != nil {
			t.Fatal(err)
		}
		L := 1 / lr
		var h float64
		for _, u := range updates {
			var norm float64
			for ti := range global {
				for j, g := range global[ti].Data {
					gk := (float64(g) - float64(u.Weights[ti].Data[j])) * L
					norm += gk * gk
				}
			}
			F := u.Loss + 1e-10
			h += q*math.Pow(F, q-1)*norm + L*math.Pow(F, q)
		}
		for ti := range global {
			for j, g := range global[ti].Data {
				var delta float64
				for _, u := range updates {
					delta += math.Pow(u.Loss+1e-10, q) * (float64(g) - float64(u.Weights[ti].Data[j])) * L
				}
				checkClose(t, got[ti].Data[j], float64(g)-delta/(h+1e-10), 1e-5)
			}
		}
	})
}

func checkClose(t *testing.T, got float32, want, tol float64) {
	t.Helper()
	if math.Abs(float64(got)-want) > tol*max(1, math.Abs(want)) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
