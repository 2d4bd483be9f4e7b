package selection

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/fedscale/fedscale-go/runtime/trace"
)

func baseOptions() Options {
	return Options{
		Participants: 10, Overcommitment: 1.3,
		BatchSize: 30, LocalSteps: 20, ModelBytes: 1 << 20,
		FilterLess: 0, FilterMore: math.MaxInt64,
		Seed: 1,
	}
}

// uniformSamples gives n clients 100 samples each.
func uniformSamples(n int) []int64 {
	s := make([]int64, n)
	for i := range s {
		s[i] = 100
	}
	return s
}

// distinctCaps gives every trace entry a different speed: entry i computes
// in i+1 ms per sample.
func distinctCaps(n int) []trace.Capacity {
	c := make([]trace.Capacity, n)
	for i := range c {
		c[i] = trace.Capacity{Computation: float64(i + 1), Communication: 1000}
	}
	return c
}

func mustRegistry(t *testing.T, samples []int64, caps []trace.Capacity, beh []trace.Behavior, opt Options) *Registry {
	t.Helper()
	r, err := NewRegistry(samples, caps, beh, opt)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustSelect(t *testing.T, r *Registry, round int, clock float64) Round {
	t.Helper()
	res, err := r.Select(round, clock)
	if err != nil {
		t.Fatal(err)
	}
	checkRound(t, res)
	return res
}

// checkRound asserts the invariants every Round has.
func checkRound(t *testing.T, res Round) {
	t.Helper()
	seen := map[int64]bool{}
	for _, list := range [][]Selected{res.Kept, res.Stragglers} {
		for i, s := range list {
			if i > 0 && list[i-1].Client >= s.Client {
				t.Fatalf("not sorted by client id: %v", list)
			}
			if seen[s.Client] {
				t.Fatalf("client %d selected twice", s.Client)
			}
			seen[s.Client] = true
			if s.Duration != s.Compute+s.Comm {
				t.Fatalf("client %d: duration %v != %v + %v", s.Client, s.Duration, s.Compute, s.Comm)
			}
		}
	}
	maxKept := 0.0
	for _, k := range res.Kept {
		maxKept = max(maxKept, k.Duration)
		for _, s := range res.Stragglers {
			if s.Duration < k.Duration || (s.Duration == k.Duration && s.Client < k.Client) {
				t.Fatalf("straggler %+v is faster than kept %+v", s, k)
			}
		}
	}
	if res.Duration != maxKept {
		t.Fatalf("round duration %v, slowest kept %v", res.Duration, maxKept)
	}
}

func TestDeterminism(t *testing.T) {
	opt := baseOptions()
	samples := uniformSamples(10_000)
	caps := distinctCaps(77)
	beh := halfDayBehaviors(50)
	a := mustRegistry(t, samples, caps, beh, opt)
	b := mustRegistry(t, samples, caps, beh, opt)

	first := mustSelect(t, a, 3, 1000)
	if again := mustSelect(t, b, 3, 1000); !reflect.DeepEqual(first, again) {
		t.Error("same seed, round and clock gave different rounds")
	}
	if next := mustSelect(t, a, 4, 1000); reflect.DeepEqual(first, next) {
		t.Error("different rounds gave the same selection")
	}
	opt.Seed = 2
	c := mustRegistry(t, samples, caps, beh, opt)
	if other := mustSelect(t, c, 3, 1000); reflect.DeepEqual(first, other) {
		t.Error("different seeds gave the same selection")
	}
}

func TestSampleCount(t *testing.T) {
	tests := []struct {
		name          string
		clients       int
		participants  int
		over          float64
		wantKept      int
		wantStraggler int
	}{
		{"fedscale default", 1000, 10, 1.3, 10, 3},
		{"float product 100x1.3 is 130, not 131", 10_000, 100, 1.3, 100, 30},
		{"ceil rounds up", 1000, 10, 1.25, 10, 3},
		{"no overcommitment", 1000, 7, 1, 7, 0},
		{"fewer clients than sample", 12, 10, 1.3, 10, 2},
		{"fewer clients than participants", 4, 10, 1.3, 4, 0},
		{"huge overcommitment", 50, 1, 1e300, 1, 49},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt := baseOptions()
			opt.Participants, opt.Overcommitment = tt.participants, tt.over
			r := mustRegistry(t, uniformSamples(tt.clients), distinctCaps(tt.clients), nil, opt)
			res := mustSelect(t, r, 1, 0)
			if len(res.Kept) != tt.wantKept || len(res.Stragglers) != tt.wantStraggler {
				t.Errorf("kept %d, stragglers %d; want %d, %d", len(res.Kept), len(res.Stragglers), tt.wantKept, tt.wantStraggler)
			}
		})
	}
}

func TestFastestKept(t *testing.T) {
	opt := baseOptions()
	opt.Participants, opt.Overcommitment = 20, 2
	r := mustRegistry(t, uniformSamples(5000), distinctCaps(5000), nil, opt)
	for round := range 20 {
		res := mustSelect(t, r, round, 0) // checkRound verifies kept <= stragglers
		for _, s := range append(res.Kept, res.Stragglers...) {
			compute, comm := trace.CompletionTime(trace.Capacity{Computation: float64(s.Client + 1), Communication: 1000},
				opt.BatchSize, opt.LocalSteps, opt.ModelBytes)
			if s.Compute != compute || s.Comm != comm {
				t.Fatalf("client %d: times (%v, %v), want (%v, %v)", s.Client, s.Compute, s.Comm, compute, comm)
			}
		}
	}
}

// TestTiesByClientID: with no capacity trace every client is equally fast,
// so the kept ones are the lowest ids of those sampled.
func TestTiesByClientID(t *testing.T) {
	r := mustRegistry(t, uniformSamples(1000), nil, nil, baseOptions())
	res := mustSelect(t, r, 1, 0)
	if len(res.Kept) != 10 || len(res.Stragglers) != 3 {
		t.Fatalf("kept %d, stragglers %d", len(res.Kept), len(res.Stragglers))
	}
	if res.Kept[len(res.Kept)-1].Client > res.Stragglers[0].Client {
		t.Errorf("tie not broken by client id: kept %v, stragglers %v", res.Kept, res.Stragglers)
	}
	compute, comm := trace.CompletionTime(trace.DefaultCapacity, 30, 20, 1<<20)
	if res.Duration != compute+comm {
		t.Errorf("duration %v, want default capacity's %v", res.Duration, compute+comm)
	}
}

func TestFilters(t *testing.T) {
	// Client i has i samples.
	samples := make([]int64, 200)
	for i := range samples {
		samples[i] = int64(i)
	}
	tests := []struct {
		name         string
		less, more   int64
		wantEligible int
	}{
		{"all", 0, math.MaxInt64, 200},
		{"fedscale filter_less 32", 32, 1e15, 168},
		{"window", 50, 59, 10},
		{"single", 7, 7, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt := baseOptions()
			opt.FilterLess, opt.FilterMore = tt.less, tt.more
			opt.Participants, opt.Overcommitment = 5, 1
			r := mustRegistry(t, samples, nil, nil, opt)
			if r.Eligible() != tt.wantEligible {
				t.Errorf("eligible %d, want %d", r.Eligible(), tt.wantEligible)
			}
			for round := range 50 {
				res := mustSelect(t, r, round, 0)
				for _, s := range append(res.Kept, res.Stragglers...) {
					if n := samples[s.Client]; n < tt.less || n > tt.more {
						t.Fatalf("client %d with %d samples selected", s.Client, n)
					}
				}
			}
		})
	}
}

// halfDayBehaviors returns n traces with a one-day cycle: odd entries are
// online in the first half of the day, even ones in the second.
func halfDayBehaviors(n int) []trace.Behavior {
	b := make([]trace.Behavior, n)
	for i := range b {
		b[i] = trace.Behavior{FinishTime: 86400, Active: []int64{0}, Inactive: []int64{43199}}
		if i%2 == 0 {
			b[i].Active, b[i].Inactive = []int64{43200}, []int64{86399}
		}
	}
	return b
}

func TestOfflineNeverSelected(t *testing.T) {
	beh := halfDayBehaviors(10) // client k is odd-online iff k is odd
	r := mustRegistry(t, uniformSamples(1000), distinctCaps(13), beh, baseOptions())
	for _, clock := range []float64{0, 1000, 43200, 50000, 86400 + 10, 3*86400 + 60000} {
		for round := range 20 {
			res := mustSelect(t, r, round, clock)
			if len(res.Kept) != 10 {
				t.Fatalf("clock %v: kept %d, want 10", clock, len(res.Kept))
			}
			for _, s := range append(res.Kept, res.Stragglers...) {
				if !beh[s.Client%10].Online(clock) {
					t.Fatalf("clock %v: offline client %d selected", clock, s.Client)
				}
			}
		}
	}
}

func TestAllOffline(t *testing.T) {
	beh := []trace.Behavior{{FinishTime: 100, Active: []int64{10}, Inactive: []int64{20}}}
	r := mustRegistry(t, uniformSamples(100_000), nil, beh, baseOptions())
	res, err := r.Select(1, 50)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Kept) != 0 || len(res.Stragglers) != 0 || res.Duration != 0 {
		t.Errorf("want an empty round, got %+v", res)
	}
	// Later in the cycle everyone is back.
	if res := mustSelect(t, r, 1, 115); len(res.Kept) != 10 {
		t.Errorf("kept %d once online, want 10", len(res.Kept))
	}
}

// TestFewOnline exercises the fallback from rejection sampling to a scan:
// only 5 of 200,000 clients are ever online at the chosen time.
func TestFewOnline(t *testing.T) {
	const n = 200_000
	beh := make([]trace.Behavior, n)
	for i := range beh {
		beh[i] = trace.Behavior{FinishTime: 1000, Active: []int64{0}, Inactive: []int64{10}}
	}
	online := []int64{3, 777, 4242, 100_000, 199_999}
	for _, c := range online {
		beh[c] = trace.Behavior{FinishTime: 1000, Active: []int64{500}, Inactive: []int64{600}}
	}
	r := mustRegistry(t, uniformSamples(n), nil, beh, baseOptions())
	res := mustSelect(t, r, 1, 550)
	var got []int64
	for _, s := range res.Kept {
		got = append(got, s.Client)
	}
	if !reflect.DeepEqual(got, online) || len(res.Stragglers) != 0 {
		t.Errorf("kept %v, stragglers %v; want all of %v", got, res.Stragglers, online)
	}
}

func TestTracesWrapAround(t *testing.T) {
	caps := []trace.Capacity{{Computation: 1, Communication: 100}, {Computation: 2, Communication: 200}, {Computation: 3, Communication: 300}}
	beh := []trace.Behavior{
		{FinishTime: 10, Active: []int64{0}, Inactive: []int64{4}},
		{FinishTime: 10, Active: []int64{5}, Inactive: []int64{9}},
	}
	opt := baseOptions()
	opt.Participants, opt.Overcommitment = 5, 2
	r := mustRegistry(t, uniformSamples(100), caps, beh, opt)
	for _, clock := range []float64{2, 7} {
		res := mustSelect(t, r, 9, clock)
		if len(res.Kept)+len(res.Stragglers) != 10 {
			t.Fatalf("clock %v: sampled %d, want 10", clock, len(res.Kept)+len(res.Stragglers))
		}
		for _, s := range append(res.Kept, res.Stragglers...) {
			if !beh[s.Client%2].Online(clock) {
				t.Fatalf("clock %v: client %d uses the wrong behavior entry", clock, s.Client)
			}
			compute, comm := trace.CompletionTime(caps[s.Client%3], opt.BatchSize, opt.LocalSteps, opt.ModelBytes)
			if s.Compute != compute || s.Comm != comm {
				t.Fatalf("client %d uses the wrong capacity entry", s.Client)
			}
		}
	}
}

// TestUniform checks, loosely, that every online client is equally likely
// to be sampled, on both the rejection path and the scan path.
func TestUniform(t *testing.T) {
	tests := []struct {
		name    string
		clients int
	}{
		{"rejection sampling", 40}, // sample of 4 is at most a quarter
		{"full scan", 10},          // sample of 4 is over a quarter
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt := baseOptions()
			opt.Participants, opt.Overcommitment = 4, 1
			beh := halfDayBehaviors(tt.clients) // half are online at clock 0
			r := mustRegistry(t, uniformSamples(tt.clients), nil, beh, opt)
			const rounds = 20_000
			counts := make([]int, tt.clients)
			for round := range rounds {
				res := mustSelect(t, r, round, 0)
				for _, s := range res.Kept {
					counts[s.Client]++
				}
			}
			want := float64(rounds*4) / float64(tt.clients/2)
			for c, n := range counts {
				if c%2 == 0 {
					if n != 0 {
						t.Fatalf("offline client %d selected %d times", c, n)
					}
					continue
				}
				if math.Abs(float64(n)-want) > 0.1*want {
					t.Errorf("client %d selected %d times, want about %.0f", c, n, want)
				}
			}
		})
	}
}

func TestNewRegistryErrors(t *testing.T) {
	tests := []struct {
		name    string
		samples []int64
		caps    []trace.Capacity
		beh     []trace.Behavior
		edit    func(*Options)
		want    string
	}{
		{"no clients", nil, nil, nil, nil, "no clients"},
		{"zero participants", uniformSamples(5), nil, nil, func(o *Options) { o.Participants = 0 }, "participants"},
		{"overcommitment below 1", uniformSamples(5), nil, nil, func(o *Options) { o.Overcommitment = 0.5 }, "overcommitment"},
		{"overcommitment NaN", uniformSamples(5), nil, nil, func(o *Options) { o.Overcommitment = math.NaN() }, "overcommitment"},
		{"zero batch", uniformSamples(5), nil, nil, func(o *Options) { o.BatchSize = 0 }, "batch size"},
		{"zero steps", uniformSamples(5), nil, nil, func(o *Options) { o.LocalSteps = 0 }, "local steps"},
		{"negative model", uniformSamples(5), nil, nil, func(o *Options) { o.ModelBytes = -1 }, "model size"},
		{"filters crossed", uniformSamples(5), nil, nil, func(o *Options) { o.FilterLess, o.FilterMore = 10, 5 }, "filter_less"},
		{"nobody eligible", uniformSamples(5), nil, nil, func(o *Options) { o.FilterLess = 101 }, "none of the 5 clients is eligible"},
		{"negative samples", []int64{5, -1}, nil, nil, nil, "client 1 has a negative sample count"},
		{"bad capacity", uniformSamples(5), []trace.Capacity{{Computation: 1, Communication: 1}, {Computation: 1, Communication: 0}}, nil, nil, "capacity trace entry 1"},
		{"bad behavior", uniformSamples(5), nil, []trace.Behavior{{FinishTime: 5, Active: []int64{1}}}, nil, "behavior trace entry 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt := baseOptions()
			if tt.edit != nil {
				tt.edit(&opt)
			}
			_, err := NewRegistry(tt.samples, tt.caps, tt.beh, opt)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestSelectRejectsBadClock(t *testing.T) {
	r := mustRegistry(t, uniformSamples(10), nil, nil, baseOptions())
	for _, clock := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, err := r.Select(1, clock); err == nil {
			t.Errorf("clock %v accepted", clock)
		}
	}
}

func TestSampleSize(t *testing.T) {
	tests := []struct {
		p    int
		o    float64
		want int
	}{
		{10, 1.3, 13}, {100, 1.3, 130}, {3, 1.1, 4}, {1, 1, 1}, {7, 1.01, 8}, {1, 1e300, math.MaxInt32},
	}
	for _, tt := range tests {
		if got := sampleSize(tt.p, tt.o); got != tt.want {
			t.Errorf("sampleSize(%d, %v) = %d, want %d", tt.p, tt.o, got, tt.want)
		}
	}
}
