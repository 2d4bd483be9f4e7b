package aggregate

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// robust is a policy with its parameters on top of DefaultOptions.
func robust(p string, f func(*Options)) Options {
	o := withPolicy(DefaultOptions(), p)
	if f != nil {
		f(&o)
	}
	return o
}

func TestParsePolicyRobust(t *testing.T) {
	for in, want := range map[string]string{
		"fed-median": PolicyFedMedian, "Fed-Trimmed-Avg": PolicyFedTrimmedAvg,
		" krum ": PolicyKrum, "MULTI-KRUM": PolicyMultiKrum,
	} {
		if got, err := ParsePolicy(in); err != nil || got != want {
			t.Errorf("ParsePolicy(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	_, err := ParsePolicy("bulyan")
	if err == nil || !strings.Contains(err.Error(), "fed-median, fed-trimmed-avg, krum, multi-krum") {
		t.Errorf("ParsePolicy(bulyan) = %v, want the robust policies listed", err)
	}
}

func TestNewRobust(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opt     Options
		wantErr string // "" for success
	}{
		{"median", robust(PolicyFedMedian, nil), ""},
		{"trimmed default", robust(PolicyFedTrimmedAvg, nil), ""},
		{"trimmed 0 is the mean", robust(PolicyFedTrimmedAvg, func(o *Options) { o.TrimFraction = 0 }), ""},
		{"trimmed 0.5", robust(PolicyFedTrimmedAvg, func(o *Options) { o.TrimFraction = 0.5 }), "trim_fraction 0.5, want in [0, 0.5)"},
		{"trimmed negative", robust(PolicyFedTrimmedAvg, func(o *Options) { o.TrimFraction = -0.1 }), "trim_fraction -0.1"},
		{"trimmed NaN", robust(PolicyFedTrimmedAvg, func(o *Options) { o.TrimFraction = math.NaN() }), "trim_fraction NaN"},
		{"trim_fraction ignored elsewhere", robust(PolicyFedMedian, func(o *Options) { o.TrimFraction = 7 }), ""},
		{"krum defaults", robust(PolicyKrum, nil), ""},
		{"krum f 0", robust(PolicyKrum, func(o *Options) { o.KrumMalicious = 0 }), ""},
		{"krum negative f", robust(PolicyKrum, func(o *Options) { o.KrumMalicious = -1 }), "krum: num_malicious_clients -1, want >= 0"},
		{"multi-krum negative f", robust(PolicyMultiKrum, func(o *Options) { o.KrumMalicious = -2 }), "num_malicious_clients -2"},
		{"multi-krum negative m", robust(PolicyMultiKrum, func(o *Options) { o.KrumKeep = -1 }), "num_clients_to_keep -1, want >= 0"},
		{"clip", robust(PolicyFedAvg, func(o *Options) { o.ClipNorm = 3 }), ""},
		{"clip with yogi", robust(PolicyFedYogi, func(o *Options) { o.ClipNorm = 3 }), ""},
		{"clip negative", robust(PolicyFedAvg, func(o *Options) { o.ClipNorm = -1 }), "clip_norm -1, want finite >= 0"},
		{"clip Inf", robust(PolicyKrum, func(o *Options) { o.ClipNorm = math.Inf(1) }), "clip_norm +Inf"},
		{"clip NaN", robust(PolicyFedMedian, func(o *Options) { o.ClipNorm = math.NaN() }), "clip_norm NaN"},
		{"clip does not hide a bad policy", Options{Policy: "x", ClipNorm: 1}, `unknown policy "x"`},
		{"unknown lists robust", Options{Policy: "bulyan"}, "robust ones: fed-median, fed-trimmed-avg, krum, multi-krum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.opt)
			switch {
			case tc.wantErr == "" && (err != nil || s == nil):
				t.Fatalf("New = %v, %v", s, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// Coordinate-wise median and trimmed mean against values computed by hand
// (numpy.median, scipy.stats.trim_mean, which Flower's FedMedian and
// FedTrimmedAvg call). Sample counts must not matter.
func TestOrderStatHandComputed(t *testing.T) {
	trim := func(b float64) Options {
		return robust(PolicyFedTrimmedAvg, func(o *Options) { o.TrimFraction = b })
	}
	med := robust(PolicyFedMedian, nil)
	// ten is ten clients holding 1..9 and an attacker's 1e30 at element 0,
	// and 10..1 with an attacker's -1e30 at element 1.
	var ten []Update
	for i := range int64(10) {
		a, b := float32(i+1), float32(10-i)
		if i == 9 {
			a, b = 1e30, -1e30
		}
		ten = append(ten, upd(i+1, 1+i*1000, 0, a, b))
	}
	for _, tc := range []struct {
		name    string
		opt     Options
		updates []Update
		want    []float64
	}{
		{"median of one", med, []Update{upd(1, 5, 0, 3, -2)}, []float64{3, -2}},
		{"median of two is their mean", med, []Update{upd(1, 1, 0, 3, -2), upd(2, 100, 0, 4, 8)}, []float64{3.5, 3}},
		{"median odd", med, []Update{upd(1, 1, 0, 1, 5, 3), upd(2, 1, 0, 2, -1, 9), upd(3, 1, 0, 100, 0, 4)}, []float64{2, 0, 4}},
		{"median even", med, []Update{upd(1, 1, 0, 1, 5, 3), upd(2, 1, 0, 2, -1, 9), upd(3, 1, 0, 100, 0, 4), upd(4, 1, 0, 4, 7, -8)}, []float64{3, 2.5, 3.5}},
		{"median ties", med, []Update{upd(1, 1, 0, 2, 1), upd(2, 1, 0, 7, 5), upd(3, 1, 0, 2, 5), upd(4, 1, 0, 2, 1)}, []float64{2, 3}},
		{"median ignores sample counts", med, []Update{upd(1, 1e9, 0, 50), upd(2, 1, 0, 1), upd(3, 1, 0, 2)}, []float64{2}},
		{"median outvotes 1e30", med, ten, []float64{5.5, 5.5}},
		{"trimmed 0.1 of 10 cuts one each end", trim(0.1), ten, []float64{5.5, 5.5}},
		{"trimmed 0.1 of 9 cuts none", trim(0.1), ten[:9], []float64{5, 6}},
		{"trimmed 0 is the unweighted mean", trim(0), []Update{upd(1, 1, 0, 1, 2), upd(2, 3, 0, 5, 6)}, []float64{3, 4}},
		{"trimmed 0.25 of 4 is the median", trim(0.25), []Update{upd(1, 1, 0, 1), upd(2, 1, 0, 2), upd(3, 1, 0, 100), upd(4, 1, 0, 4)}, []float64{3}},
		// int(0.3·10) = int(3.0000000000000004) = 3: 4 of 10 values kept.
		{"trimmed 0.3 of 10", trim(0.3), ten, []float64{5.5, 5.5}},
		{"trimmed 0.49 of 5 is the median", trim(0.49), ten[:5], []float64{3, 8}},
		{"trimmed ties", trim(0.2), []Update{upd(1, 1, 0, 1), upd(2, 1, 0, 1), upd(3, 1, 0, 1), upd(4, 1, 0, 9), upd(5, 1, 0, 9)}, []float64{11.0 / 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mustNew(t, tc.opt).Step(vec(make([]float32, len(tc.want))...), tc.updates, 0.1)
			if err != nil {
				t.Fatal(err)
			}
			near(t, "Step", got, tc.want...)
		})
	}
}

// refOrderStat is the definition written out: per element, sort the
// values, drop cut from each end, average the rest (scipy's trim_mean;
// numpy's median for cut = (n−1)/2).
func refOrderStat(updates []Update, cut int) tensor.List {
	out := updates[0].Weights.ZerosLike()
	n := len(updates)
	for ti := range out {
		for j := range out[ti].Data {
			var v []float64
			for _, u := range updates {
				v = append(v, float64(u.Weights[ti].Data[j]))
			}
			slices.Sort(v)
			var s float64
			for _, x := range v[cut : n-cut] {
				s += x
			}
			out[ti].Data[j] = float32(s / float64(n-2*cut))
		}
	}
	return out
}

// refKrum is Flower's aggregate_krum written out in float64: squared
// distances of the flattened models, each row's num_closest = max(1,
// n−f−2) nearest others summed, the to_keep lowest scores (Krum: 1)
// averaged with their sample counts.
func refKrum(updates []Update, f, keep int) tensor.List {
	n := len(updates)
	flat := make([][]float64, n)
	for i, u := range updates {
		for _, t := range u.Weights {
			for _, x := range t.Data {
				flat[i] = append(flat[i], float64(x))
			}
		}
	}
	scores := make([]float64, n)
	for i := range n {
		var d []float64
		for j := range n {
			if j != i {
				var s float64
				for e := range flat[i] {
					s += (flat[i][e] - flat[j][e]) * (flat[i][e] - flat[j][e])
				}
				d = append(d, s)
			}
		}
		slices.Sort(d)
		for _, x := range d[:max(1, n-f-2)] {
			scores[i] += x
		}
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(scores[a], scores[b]) })
	var chosen []Update
	for _, i := range idx[:keep] {
		chosen = append(chosen, updates[i])
	}
	return naiveMean(chosen)
}

// Points on a line, f = 1, so each score sums the 2 nearest squared
// distances: 0 → 1+4 = 5, 1 → 1+1 = 2, 2 → 1+1 = 2, 3 → 1+4 = 5, and
// 100 → 97²+98² = 19013. Krum's tie between 1 and 2 goes to the earlier
// client; Multi-Krum keeps 1, 2, then 0 before 3 (another tie).
func TestKrumHandComputed(t *testing.T) {
	line := []Update{upd(10, 1, 0, 0), upd(11, 1, 0, 1), upd(12, 3, 0, 2), upd(13, 1, 0, 3), upd(14, 1, 0, 100)}
	krumOpt := func(p string, f, m int) Options {
		return robust(p, func(o *Options) { o.KrumMalicious, o.KrumKeep = f, m })
	}
	for _, tc := range []struct {
		name    string
		opt     Options
		updates []Update
		want    []float64
	}{
		{"krum tie goes to the earlier client", krumOpt(PolicyKrum, 1, 0), line, []float64{1}},
		{"krum ignores num_clients_to_keep", krumOpt(PolicyKrum, 1, 3), line, []float64{1}},
		// (1·1 + 3·2 + 1·0) / 5: the kept updates' sample-weighted mean.
		{"multi-krum m=3", krumOpt(PolicyMultiKrum, 1, 3), line, []float64{7.0 / 5}},
		// m = 0 keeps n−f = 4: (0 + 1 + 6 + 3) / 6.
		{"multi-krum m=n-f", krumOpt(PolicyMultiKrum, 1, 0), line, []float64{10.0 / 6}},
		{"multi-krum m=1 is krum", krumOpt(PolicyMultiKrum, 1, 1), line, []float64{1}},
		// f = 0 sums the 3 nearest: 0 → 1+4+9 = 14, 1 → 1+1+4 = 6,
		// 2 → 1+1+4 = 6, 3 → 1+4+9 = 14, 100 → huge.
		{"krum f=0", krumOpt(PolicyKrum, 0, 0), line, []float64{1}},
		// n = 3 is the least for f = 0: each score is one distance;
		// [0,0] and [3,4] are 25 apart, [0,0] and [0,1] 1, [3,4] and
		// [0,1] 18: scores 1, 18, 1 → the first.
		{"krum n=3 f=0", krumOpt(PolicyKrum, 0, 0), []Update{upd(1, 1, 0, 0, 0), upd(2, 1, 0, 3, 4), upd(3, 1, 0, 0, 1)}, []float64{0, 0}},
		// An attacker's 1e30 is never chosen.
		{"krum outvotes 1e30", krumOpt(PolicyKrum, 1, 0), []Update{upd(1, 1, 0, 1e30, 1e30), upd(2, 1, 0, 1, 2), upd(3, 1, 0, 1.5, 2), upd(4, 1, 0, 1, 2.5), upd(5, 1, 0, 9, 9)}, []float64{1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mustNew(t, tc.opt).Step(vec(make([]float32, len(tc.want))...), tc.updates, 0.1)
			if err != nil {
				t.Fatal(err)
			}
			near(t, "Step", got, tc.want...)
		})
	}
	// Krum returns the chosen update itself, to the bit: 0.25 is 0.05
	// from both 0.2 and 0.3, the least sum of two squared distances.
	got, err := mustNew(t, krumOpt(PolicyKrum, 1, 0)).Step(vec(0), []Update{upd(1, 7, 0, 0.1), upd(2, 13, 0, 0.3), upd(3, 1, 0, 0.2), upd(4, 5, 0, 0.25), upd(5, 3, 0, -4)}, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	sameBits(t, "krum", got, vec(0.25))
}

func TestKrumCounts(t *testing.T) {
	four := []Update{upd(1, 1, 0, 0), upd(2, 1, 0, 1), upd(3, 1, 0, 2), upd(4, 1, 0, 3)}
	for _, tc := range []struct {
		name    string
		opt     Options
		updates []Update
		wantErr string // "" for success
	}{
		{"n=4 f=1", robust(PolicyKrum, nil), four, "4 updates, but num_malicious_clients 1 needs more than 2·1+2"},
		{"n=5 f=1", robust(PolicyKrum, nil), append(four, upd(5, 1, 0, 4)), ""},
		{"n=2 f=0", robust(PolicyKrum, func(o *Options) { o.KrumMalicious = 0 }), four[:2], "2 updates, but num_malicious_clients 0 needs more than 2·0+2"},
		{"n=1 f=0", robust(PolicyMultiKrum, func(o *Options) { o.KrumMalicious = 0 }), four[:1], "1 updates"},
		{"n=6 f=2", robust(PolicyMultiKrum, func(o *Options) { o.KrumMalicious = 2 }), append(four, upd(5, 1, 0, 4), upd(6, 1, 0, 5)), "needs more than 2·2+2"},
		{"huge f", robust(PolicyKrum, func(o *Options) { o.KrumMalicious = math.MaxInt }), four, "needs more than"},
		{"m = n-f", robust(PolicyMultiKrum, func(o *Options) { o.KrumMalicious, o.KrumKeep = 0, 4 }), four, ""},
		{"m > n-f", robust(PolicyMultiKrum, func(o *Options) { o.KrumMalicious, o.KrumKeep = 1, 5 }), append(four, upd(5, 1, 0, 4)), "num_clients_to_keep 5 is more than the round's 5 updates less num_malicious_clients 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mustNew(t, tc.opt).Step(vec(0), tc.updates, 0.1)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatal(err)
			case tc.wantErr != "":
				checkErr(t, err, -1, tc.wantErr)
			}
		})
	}
	many := make([]Update, MaxKrumUpdates+1)
	for i := range many {
		many[i] = upd(int64(i), 1, 0, 0)
	}
	_, err := mustNew(t, robust(PolicyKrum, nil)).Step(vec(0), many, 0.1)
	checkErr(t, err, -1, fmt.Sprintf("at most %d", MaxKrumUpdates))
}

// On random multi-block models the policies equal their definitions
// (median and trimmed mean to the bit, Krum's choice as Flower makes it),
// give the same bits for any GOMAXPROCS, and median and trimmed mean also
// for any order of the updates.
func TestRobustMatchesReference(t *testing.T) {
	sizes := []int{5, 70001, 3 * blockLen}
	for _, n := range []int{1, 2, 5, 10, 11, 40} { // 40: past sortValues' insertion sort
		rng := newRand(uint64(n))
		global := randomModel(rng, sizes)
		updates := randomUpdates(rng, n, sizes)
		// Ties: a copy of another client's model.
		if n >= 5 {
			updates[3].Weights = updates[1].Weights.Clone()
		}
		reversed := slices.Clone(updates)
		slices.Reverse(reversed)
		cases := []struct {
			opt     Options
			want    tensor.List
			orderOK bool // the result does not depend on the updates' order
		}{
			{robust(PolicyFedMedian, nil), refOrderStat(updates, (n-1)/2), true},
			{robust(PolicyFedTrimmedAvg, func(o *Options) { o.TrimFraction = 0.2 }), refOrderStat(updates, int(0.2*float64(n))), true},
			{robust(PolicyFedTrimmedAvg, func(o *Options) { o.TrimFraction = 0 }), refOrderStat(updates, 0), true},
		}
		if n >= 5 {
			cases = append(cases,
				struct {
					opt     Options
					want    tensor.List
					orderOK bool
				}{robust(PolicyKrum, nil), refKrum(updates, 1, 1), false},
				struct {
					opt     Options
					want    tensor.List
					orderOK bool
				}{robust(PolicyMultiKrum, func(o *Options) { o.KrumKeep = 3 }), refKrum(updates, 1, 3), false},
				struct {
					opt     Options
					want    tensor.List
					orderOK bool
				}{robust(PolicyMultiKrum, func(o *Options) { o.KrumMalicious = (n - 3) / 2 }), refKrum(updates, (n-3)/2, n-(n-3)/2), false})
		}
		for _, tc := range cases {
			t.Run(fmt.Sprintf("n=%d/%s/f=%d/m=%d/trim=%v", n, tc.opt.Policy, tc.opt.KrumMalicious, tc.opt.KrumKeep, tc.opt.TrimFraction), func(t *testing.T) {
				var first tensor.List
				for _, procs := range []int{1, 2, 3} {
					withProcs(procs, func() {
						got, err := mustNew(t, tc.opt).Step(global, updates, 0.1)
						if err != nil {
							t.Fatal(err)
						}
						if first == nil {
							first = got
							return
						}
						sameBits(t, fmt.Sprintf("GOMAXPROCS %d", procs), got, first)
					})
				}
				if tc.orderOK {
					sameBits(t, "vs definition", first, tc.want)
					got, err := mustNew(t, tc.opt).Step(global, reversed, 0.1)
					if err != nil {
						t.Fatal(err)
					}
					sameBits(t, "updates reversed", got, first)
					return
				}
				for ti := range first {
					for j, g := range first[ti].Data {
						checkClose(t, g, float64(tc.want[ti].Data[j]), 1e-6)
					}
				}
			})
		}
	}
}

// The norm bound, hand-computed: from global [1, 1], an update at [4, 5]
// is 5 away; with clip_norm 1 it arrives as [1.6, 1.8]. [1, 2] is 1 away
// and passes unchanged.
func TestClipNorm(t *testing.T) {
	global := vec(1, 1)
	far, close := upd(1, 1, 0.5, 4, 5), upd(2, 3, 0.5, 1, 2)
	clip := func(p string, c float64) Options { return robust(p, func(o *Options) { o.ClipNorm = c }) }
	for _, tc := range []struct {
		name    string
		opt     Options
		updates []Update
		want    []float64
	}{
		{"one update", clip(PolicyFedAvg, 1), []Update{far}, []float64{1.6, 1.8}},
		{"at the bound", clip(PolicyFedAvg, 5), []Update{far}, []float64{4, 5}},
		{"below the bound", clip(PolicyFedAvg, 6), []Update{far}, []float64{4, 5}},
		// (1·[1.6, 1.8] + 3·[1, 2]) / 4
		{"fedavg", clip(PolicyFedAvg, 1), []Update{far, close}, []float64{1.15, 1.95}},
		{"median", clip(PolicyFedMedian, 1), []Update{far, close}, []float64{1.3, 1.9}},
		// 0.5 of the way: [2.5, 3].
		{"fed-prox", clip(PolicyFedProx, 2.5), []Update{far}, []float64{2.5, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.updates[0].Weights.Clone()
			got, err := mustNew(t, tc.opt).Step(global, tc.updates, 0.1)
			if err != nil {
				t.Fatal(err)
			}
			near(t, "Step", got, tc.want...)
			sameBits(t, "caller's update", tc.updates[0].Weights, before)
		})
	}
	// Under every policy the clipped update is what the policy sees:
	// equal to the policy fed the clipped update by hand.
	clipped := []Update{upd(1, 1, 0.5, 1.6, 1.8), close}
	for _, p := range []string{PolicyFedAvg, PolicyFedYogi, PolicyQFedAvg, PolicyFedMedian, PolicyFedTrimmedAvg} {
		t.Run("every policy/"+p, func(t *testing.T) {
			s := mustNew(t, clip(p, 1))
			got, err := s.Step(global, []Update{far, close}, 0.1)
			if err != nil {
				t.Fatal(err)
			}
			want, err := mustNew(t, withPolicy(DefaultOptions(), p)).Step(global, clipped, 0.1)
			if err != nil {
				t.Fatal(err)
			}
			for j := range want[0].Data {
				checkClose(t, got[0].Data[j], float64(want[0].Data[j]), 1e-6)
			}
			if p == PolicyFedYogi && s.State() == nil {
				t.Error("the bound hides FedYogi's state")
			}
		})
	}
	// Clipped updates are within the bound on a large model.
	rng := newRand(9)
	sizes := []int{70001, 17}
	g := randomModel(rng, sizes)
	us := randomUpdates(rng, 4, sizes)
	out, err := clipUpdates(g, us, 2)
	if err != nil {
		t.Fatal(err)
	}
	for k, u := range out {
		var ss float64
		for ti := range g {
			for j := range g[ti].Data {
				d := float64(u.Weights[ti].Data[j]) - float64(g[ti].Data[j])
				ss += d * d
			}
		}
		if math.Sqrt(ss) > 2*(1+1e-6) {
			t.Errorf("update %d: norm %v after clipping to 2", k, math.Sqrt(ss))
		}
	}
}

// Every robust policy, and the bound, rejects a bad update with a
// ClientError naming it before any value reaches the model.
func TestRobustValidation(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	good := func(id int64) Update { return upd(id, 1, 0.5, 1, 2) }
	for _, tc := range []struct {
		name    string
		updates []Update
		client  int64
		wantErr string
	}{
		{"NaN", []Update{good(1), upd(2, 1, 0, nan, 0), good(3)}, 2, "non-finite"},
		{"Inf", []Update{upd(4, 1, 0, 0, inf), good(1), good(2)}, 4, "non-finite"},
		{"first bad named", []Update{good(1), upd(5, 1, 0, nan, 0), upd(6, 1, 0, 0, -inf)}, 5, "non-finite"},
		{"zero samples", []Update{good(1), good(2), upd(7, 0, 0, 1, 2)}, 7, "sample count 0"},
		{"shape", []Update{good(1), good(2), upd(8, 1, 0, 1, 2, 3)}, 8, "shape [3], want [2]"},
		{"duplicate", []Update{good(1), good(2), good(1)}, 1, "more than one update"},
	} {
		for _, opt := range []Options{
			robust(PolicyFedMedian, nil),
			robust(PolicyFedTrimmedAvg, nil),
			robust(PolicyKrum, func(o *Options) { o.KrumMalicious = 0 }),
			robust(PolicyMultiKrum, func(o *Options) { o.KrumMalicious = 0 }),
			robust(PolicyFedAvg, func(o *Options) { o.ClipNorm = 1 }),
			robust(PolicyFedMedian, func(o *Options) { o.ClipNorm = 1e-3 }),
		} {
			t.Run(fmt.Sprintf("%s/%s/clip=%v", tc.name, opt.Policy, opt.ClipNorm), func(t *testing.T) {
				_, err := mustNew(t, opt).Step(vec(0, 0), tc.updates, 0.1)
				checkErr(t, err, tc.client, tc.wantErr)
			})
		}
	}
	for _, p := range []string{PolicyFedMedian, PolicyFedTrimmedAvg, PolicyKrum, PolicyMultiKrum} {
		s := mustNew(t, withPolicy(DefaultOptions(), p))
		if s.State() != nil {
			t.Errorf("%s: state %v, want none", p, s.State())
		}
		if err := s.Restore(vec(1)); err == nil || !strings.Contains(err.Error(), "keeps no state") {
			t.Errorf("%s: Restore = %v", p, err)
		}
	}
}
