// Package selection is the aggregator's client registry and its per-round
// participant selection, as in FedScale's client manager with random
// sampling.
//
// A Registry knows every client's sample count and device traces. Each round
// it samples ceil(Participants x Overcommitment) clients among the eligible
// ones that are online at the virtual clock, computes each one's simulated
// completion time from its capacity trace, keeps the Participants fastest
// and reports the rest as stragglers; the round lasts as long as the slowest
// kept client. Selection is a pure function of the seed, the round number,
// the clock and the registry, so a job replays identically.
//
// The registry stays compact for millions of clients: it stores only the
// ids of eligible clients and shares the (much shorter) traces, which client
// k reads at entry k mod len. A round samples by rejection rather than
// scanning every client, so its cost depends on the number of participants,
// not on the population.
//
// Training the selected clients, aggregating and advancing the clock are the
// caller's job.
package selection

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/fedscale/fedscale-go/runtime/trace"
)

// Options configures a Registry. The fields mirror FedScale's job flags of
// the same names (num_participants, overcommitment, batch_size, local_steps,
// filter_less, filter_more, sample_seed).
type Options struct {
	// Participants is the number of clients kept per round; at least 1.
	Participants int
	// Overcommitment scales the number of clients sampled per round:
	// ceil(Participants x Overcommitment) are sampled and the Participants
	// fastest kept. At least 1 (1 means no stragglers).
	Overcommitment float64

	// BatchSize, LocalSteps and ModelBytes feed trace.CompletionTime.
	BatchSize, LocalSteps int
	ModelBytes            int64

	// A client is eligible when FilterLess <= samples <= FilterMore.
	FilterLess, FilterMore int64

	// Seed makes selection reproducible.
	Seed int64
}

// Registry is the set of registered clients. It is safe for concurrent use
// by several goroutines calling Select, since Select does not modify it.
type Registry struct {
	opt     Options
	sampled int // clients sampled per round, capped by the eligible count

	// eligible holds the ids of eligible clients in ascending order; int32
	// keeps a million clients at 4 MB.
	eligible []int32

	// The traces are the caller's slices, not copies: client k uses entry
	// k mod len. A nil slice means DefaultCapacity or always online.
	caps      []trace.Capacity
	behaviors []trace.Behavior
}

// Selected is one sampled client and its simulated task time, in seconds.
type Selected struct {
	Client        int64
	Compute, Comm float64
	// Duration is Compute+Comm.
	Duration float64
}

// Round is the outcome of one selection.
type Round struct {
	// Kept are the Participants fastest sampled clients, Stragglers the
	// other sampled ones; both are sorted by client id.
	Kept, Stragglers []Selected
	// Duration is the slowest kept client's Duration: the virtual time the
	// round takes. It is 0 when no client was online.
	Duration float64
}

// NewRegistry registers len(samples) clients; client i has samples[i]
// training samples. caps and behaviors are the device traces (client k uses
// entry k mod len); a nil or empty trace gives every client
// trace.DefaultCapacity or makes it always online. The registry keeps the
// trace slices without copying them, so the caller must not modify them
// afterwards.
func NewRegistry(samples []int64, caps []trace.Capacity, behaviors []trace.Behavior, opt Options) (*Registry, error) {
	if err := opt.validate(); err != nil {
		return nil, fmt.Errorf("selection: %w", err)
	}
	if len(samples) == 0 {
		return nil, errors.New("selection: no clients registered")
	}
	if len(samples) > math.MaxInt32 {
		return nil, fmt.Errorf("selection: %d clients registered, at most %d supported", len(samples), math.MaxInt32)
	}
	for i, c := range caps {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("selection: capacity trace entry %d: %w", i, err)
		}
	}
	for i := range behaviors {
		if err := behaviors[i].Validate(); err != nil {
			return nil, fmt.Errorf("selection: behavior trace entry %d: %w", i, err)
		}
	}

	n := 0
	for i, s := range samples {
		if s < 0 {
			return nil, fmt.Errorf("selection: client %d has a negative sample count %d", i, s)
		}
		if opt.FilterLess <= s && s <= opt.FilterMore {
			n++
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("selection: none of the %d clients is eligible: every one has fewer than %d (filter_less) or more than %d (filter_more) samples",
			len(samples), opt.FilterLess, opt.FilterMore)
	}
	eligible := make([]int32, 0, n)
	for i, s := range samples {
		if opt.FilterLess <= s && s <= opt.FilterMore {
			eligible = append(eligible, int32(i))
		}
	}

	r := &Registry{opt: opt, eligible: eligible}
	if len(caps) > 0 {
		r.caps = caps
	}
	if len(behaviors) > 0 {
		r.behaviors = behaviors
	}
	r.sampled = min(sampleSize(opt.Participants, opt.Overcommitment), len(eligible))
	return r, nil
}

func (o Options) validate() error {
	switch {
	case o.Participants < 1:
		return fmt.Errorf("participants must be at least 1, got %d", o.Participants)
	case math.IsNaN(o.Overcommitment) || math.IsInf(o.Overcommitment, 0) || o.Overcommitment < 1:
		return fmt.Errorf("overcommitment must be a finite number >= 1, got %v", o.Overcommitment)
	case o.BatchSize < 1:
		return fmt.Errorf("batch size must be at least 1, got %d", o.BatchSize)
	case o.LocalSteps < 1:
		return fmt.Errorf("local steps must be at least 1, got %d", o.LocalSteps)
	case o.ModelBytes < 0:
		return fmt.Errorf("model size must be >= 0 bytes, got %d", o.ModelBytes)
	case o.FilterLess > o.FilterMore:
		return fmt.Errorf("filter_less (%d) is greater than filter_more (%d): no client could be eligible", o.FilterLess, o.FilterMore)
	}
	return nil
}

// sampleSize is ceil(participants x overcommitment). The product is rounded
// first because binary floating point turns 100 x 1.3 into a hair above 130,
// whose ceiling would be 131.
func sampleSize(participants int, overcommitment float64) int {
	x := float64(participants) * overcommitment
	if r := math.Round(x); math.Abs(x-r) <= 1e-9*r {
		x = r
	}
	x = math.Ceil(x)
	if x >= math.MaxInt32 {
		return math.MaxInt32 // more than any registry holds; capped later
	}
	return int(x)
}

// Eligible returns the number of clients that passed the sample-count filter.
func (r *Registry) Eligible() int { return len(r.eligible) }

// Select picks the participants of a round at virtual time clock (seconds).
// The result depends only on Options.Seed, round, clock and the registry.
// When fewer eligible clients than the sample size are online, all online
// ones are sampled; when none is, Select returns an empty Round and no error,
// so the caller can advance its clock and try again.
func (r *Registry) Select(round int, clock float64) (Round, error) {
	if math.IsNaN(clock) || math.IsInf(clock, 0) {
		return Round{}, fmt.Errorf("selection: round %d: clock must be finite, got %v", round, clock)
	}
	// Mixing both seeds keeps nearby seeds and rounds far apart in PCG's
	// state space.
	rng := rand.New(rand.NewPCG(mix64(uint64(r.opt.Seed)), mix64(uint64(int64(round))^0x6a09e667f3bcc909)))
	picked := r.sample(rng, clock)
	if len(picked) == 0 {
		return Round{}, nil
	}

	all := make([]Selected, len(picked))
	for i, c := range picked {
		compute, comm := trace.CompletionTime(r.capacity(c), r.opt.BatchSize, r.opt.LocalSteps, r.opt.ModelBytes)
		all[i] = Selected{Client: int64(c), Compute: compute, Comm: comm, Duration: compute + comm}
	}
	// Fastest first; equal times go to the lower client id so the cut is
	// deterministic.
	slices.SortFunc(all, func(a, b Selected) int {
		if c := cmp.Compare(a.Duration, b.Duration); c != 0 {
			return c
		}
		return cmp.Compare(a.Client, b.Client)
	})
	keep := min(r.opt.Participants, len(all))
	res := Round{Kept: all[:keep:keep], Duration: all[keep-1].Duration}
	if keep < len(all) {
		res.Stragglers = all[keep:]
	}
	byClient := func(a, b Selected) int { return cmp.Compare(a.Client, b.Client) }
	slices.SortFunc(res.Kept, byClient)
	slices.SortFunc(res.Stragglers, byClient)
	return res, nil
}

// sample draws up to r.sampled distinct eligible clients online at clock,
// uniformly. It first tries rejection sampling: draw a random eligible
// client, skip it when offline or already drawn. That costs about
// sampled/onlineFraction draws, independent of the population. Only when the
// draws keep failing (few clients online) or the sample is a large share of
// the population does it scan every eligible client.
func (r *Registry) sample(rng *rand.Rand, clock float64) []int32 {
	n, k := len(r.eligible), r.sampled
	if k*4 <= n {
		// Past this many draws a full scan costs about as much as the draws
		// still to come.
		budget := max(16*k, n/8)
		picked := make([]int32, 0, k)
		seen := make(map[int32]struct{}, k)
		for draws := 0; len(picked) < k && draws < budget; draws++ {
			c := r.eligible[rng.IntN(n)]
			if !r.online(c, clock) {
				continue
			}
			if _, dup := seen[c]; dup {
				continue
			}
			seen[c] = struct{}{}
			picked = append(picked, c)
		}
		if len(picked) == k {
			return picked
		}
	}

	// Full scan, then a partial Fisher-Yates shuffle for a uniform subset.
	// Restarting from scratch (rather than keeping the draws above) keeps
	// the result uniform whichever path produced it.
	var online []int32
	if r.behaviors == nil {
		online = slices.Clone(r.eligible)
	} else {
		for _, c := range r.eligible {
			if r.online(c, clock) {
				online = append(online, c)
			}
		}
	}
	if len(online) <= k {
		return online
	}
	for i := range k {
		j := i + rng.IntN(len(online)-i)
		online[i], online[j] = online[j], online[i]
	}
	return online[:k]
}

func (r *Registry) online(c int32, clock float64) bool {
	if r.behaviors == nil {
		return true
	}
	return r.behaviors[int(c)%len(r.behaviors)].Online(clock)
}

func (r *Registry) capacity(c int32) trace.Capacity {
	if r.caps == nil {
		return trace.DefaultCapacity
	}
	return r.caps[int(c)%len(r.caps)]
}

// mix64 is SplitMix64's finalizer: a bijection that spreads nearby inputs.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
