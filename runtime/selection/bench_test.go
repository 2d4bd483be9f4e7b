package selection

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/fedscale/fedscale-go/runtime/trace"
)

// syntheticBehaviors builds n availability traces shaped like FedScale's:
// a cycle of two to seven days, alternating online sessions (about 1.5 h on
// average) and offline gaps (about 4.5 h), so roughly a quarter of the
// clients are online at any time.
func syntheticBehaviors(n int, seed uint64) []trace.Behavior {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]trace.Behavior, n)
	for i := range out {
		finish := int64(2+rng.IntN(6)) * 86400
		b := trace.Behavior{Duration: finish, FinishTime: finish, Model: "synthetic"}
		t := int64(rng.ExpFloat64() * 4.5 * 3600)
		for t < finish {
			end := min(t+1+int64(rng.ExpFloat64()*1.5*3600), finish)
			b.Active = append(b.Active, t)
			b.Inactive = append(b.Inactive, end)
			t = end + 1 + int64(rng.ExpFloat64()*4.5*3600)
		}
		out[i] = b
	}
	return out
}

func syntheticCapacities(n int, seed uint64) []trace.Capacity {
	rng := rand.New(rand.NewPCG(seed, 2))
	out := make([]trace.Capacity, n)
	for i := range out {
		// Log-normal spreads, like measured device speeds.
		out[i] = trace.Capacity{
			Computation:   20 * math.Exp(0.8*rng.NormFloat64()),
			Communication: 5000 * math.Exp(1.0*rng.NormFloat64()),
		}
	}
	return out
}

// BenchmarkSelect1M selects 100 participants (overcommitment 1.3) among a
// million registered clients with 4,000 behavior traces and 10,000 capacity
// traces. It also reports the registry's own heap size, traces excluded.
func BenchmarkSelect1M(b *testing.B) {
	const clients = 1_000_000
	beh := syntheticBehaviors(4000, 1)
	caps := syntheticCapacities(10_000, 1)
	samples := make([]int64, clients)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range samples {
		samples[i] = int64(rng.IntN(600)) // filter_less 32 drops about 5%
	}
	opt := Options{
		Participants: 100, Overcommitment: 1.3,
		BatchSize: 20, LocalSteps: 20, ModelBytes: 10 << 20,
		FilterLess: 32, FilterMore: 1e15, Seed: 42,
	}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r, err := NewRegistry(samples, caps, beh, opt)
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	// samples belongs to the caller, not the registry: keep it alive so that
	// its collection does not offset the measurement.
	runtime.KeepAlive(samples)
	registryMB := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / (1 << 20)

	b.ReportAllocs()
	b.ResetTimer()
	kept := 0
	round := 0
	for b.Loop() {
		// Vary the clock across the week so every path of Online is hit.
		res, err := r.Select(round, float64(round+1)*9973)
		if err != nil {
			b.Fatal(err)
		}
		kept += len(res.Kept)
		round++
	}
	b.StopTimer()
	if round > 0 && kept/round < 100 {
		b.Fatalf("only %d participants kept on average", kept/round)
	}
	b.ReportMetric(registryMB, "registry-MB")
	runtime.KeepAlive(r)
}
