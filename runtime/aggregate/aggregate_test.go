package aggregate

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// vec is a one-tensor model "w" of shape [len(v)].
func vec(v ...float32) tensor.List {
	return tensor.List{{Name: "w", Shape: []int{len(v)}, Data: append([]float32(nil), v...)}}
}

func upd(id, n int64, loss float64, w ...float32) Update {
	return Update{ClientID: id, Weights: vec(w...), NumSamples: n, Loss: loss}
}

// near compares float32 results with values computed by hand in float64.
func near(t *testing.T, what string, got tensor.List, want ...float64) {
	t.Helper()
	if len(got) != 1 || len(got[0].Data) != len(want) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
	for j, w := range want {
		if g := float64(got[0].Data[j]); math.Abs(g-w) > 1e-6*max(1, math.Abs(w)) {
			t.Errorf("%s[%d] = %.9g, want %.9g", what, j, g, w)
		}
	}
}

func mustNew(t *testing.T, opt Options) Server {
	t.Helper()
	s, err := New(opt)
	if err != nil {
		t.Fatalf("New(%+v): %v", opt, err)
	}
	return s
}

func TestFedAvgHandComputed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		policy  string
		updates []Update
		want    []float64
	}{
		{
			// (1·[1,2,3] + 3·[5,6,7]) / 4 = [16, 20, 24] / 4
			name: "two clients", policy: PolicyFedAvg,
			updates: []Update{upd(1, 1, 0, 1, 2, 3), upd(2, 3, 0, 5, 6, 7)},
			want:    []float64{4, 5, 6},
		},
		{
			// (1·[1,2,3] + 3·[5,6,7] + 4·[0,0,-8]) / 8 = [16, 20, -8] / 8
			name: "three clients", policy: PolicyNone,
			updates: []Update{upd(1, 1, 0, 1, 2, 3), upd(2, 3, 0, 5, 6, 7), upd(3, 4, 0, 0, 0, -8)},
			want:    []float64{2, 2.5, -1},
		},
		{
			// FedProx's server side is FedAvg: the weighting, not the
			// original's unweighted mean [3, 4, 5], is what counts.
			name: "fed-prox", policy: PolicyFedProx,
			updates: []Update{upd(1, 1, 0, 1, 2, 3), upd(2, 3, 0, 5, 6, 7)},
			want:    []float64{4, 5, 6},
		},
		{
			// Loss and global play no part: (2·[0.5,0,1] + 2·[1.5,0,-1]) / 4
			name: "equal weights", policy: PolicyFedAvg,
			updates: []Update{upd(9, 2, 7, 0.5, 0, 1), upd(4, 2, 1, 1.5, 0, -1)},
			want:    []float64{1, 0, 0},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustNew(t, Options{Policy: tc.policy})
			got, err := s.Step(vec(100, 100, 100), tc.updates, 0.1)
			if err != nil {
				t.Fatal(err)
			}
			near(t, "Step", got, tc.want...)

			dst := vec(0, 0, 0)
			if err := WeightedMean(dst, tc.updates); err != nil {
				t.Fatal(err)
			}
			near(t, "WeightedMean", dst, tc.want...)
		})
	}
}

// yogiOpt has round numbers so each step can be followed by hand:
// v starts at τ² = 9, 1−β1 = 0.5, 1−β2 = 0.25.
var yogiOpt = Options{Policy: PolicyFedYogi, YogiEta: 1, YogiTau: 3, YogiBeta: 0.5, YogiBeta2: 0.75}

// Step 1: global [1,1,1]; mean of 1·[3,1,-4] and 3·[11,1,0] is [9,1,-1],
// so Δ = [8, 0, -2] and Δ² = [64, 0, 4].
//
//	m = 0.5·0 + 0.5·Δ                     = [4, 0, -1]
//	sign(v − Δ²) = sign([9−64, 9, 9−4])   = [-1, +1, +1]
//	v = 9 − 0.25·Δ²·sign                  = [9+16, 9, 9−1] = [25, 9, 8]
//	x = 1 + m/(√v + 3)                    = [1 + 4/8, 1, 1 − 1/(√8+3)]
var (
	yogiGlobal1  = vec(1, 1, 1)
	yogiUpdates1 = []Update{upd(1, 1, 0, 3, 1, -4), upd(2, 3, 0, 11, 1, 0)}
	yogiWant1    = []float64{1.5, 1, 1 - 1/(math.Sqrt(8)+3)} // the last is 2√2 − 2
	yogiM1       = []float64{4, 0, -1}
	yogiV1       = []float64{25, 9, 8}
)

// Step 2: global [2,2,2]; one client at [2,6,4], so Δ = [0, 4, 2], Δ² = [0, 16, 4].
//
//	m = 0.5·[4,0,-1] + 0.5·[0,4,2]        = [2, 2, 0.5]
//	sign(v − Δ²) = sign([25, 9−16, 8−4])  = [+1, -1, +1]
//	v = [25 − 0, 9 + 0.25·16, 8 − 0.25·4] = [25, 13, 7]
//	x = 2 + m/(√v + 3)                    = [2 + 2/8, 2 + 2/(√13+3), 2 + 0.5/(√7+3)]
var (
	yogiGlobal2  = vec(2, 2, 2)
	yogiUpdates2 = []Update{upd(3, 5, 0, 2, 6, 4)}
	yogiWant2    = []float64{2.25, 2 + 2/(math.Sqrt(13)+3), 2 + 0.5/(math.Sqrt(7)+3)}
	yogiM2       = []float64{2, 2, 0.5}
	yogiV2       = []float64{25, 13, 7}
)

// checkYogiState compares State() with hand-computed moments.
func checkYogiState(t *testing.T, s Server, m, v []float64) {
	t.Helper()
	st := s.State()
	if len(st) != 2 || st[0].Name != "fed-yogi/m/w" || st[1].Name != "fed-yogi/v/w" {
		t.Fatalf("State() = %v, want fed-yogi/m/w and fed-yogi/v/w", st)
	}
	near(t, "m", st[:1], m...)
	near(t, "v", st[1:], v...)
}

func TestYogiTwoStepsAndRestore(t *testing.T) {
	s := mustNew(t, yogiOpt)
	if st := s.State(); st != nil {
		t.Fatalf("State before the first step = %v, want nil", st)
	}
	x1, err := s.Step(yogiGlobal1, yogiUpdates1, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "step 1", x1, yogiWant1...)
	checkYogiState(t, s, yogiM1, yogiV1)
	saved := s.State()

	x2, err := s.Step(yogiGlobal2, yogiUpdates2, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "step 2", x2, yogiWant2...)
	checkYogiState(t, s, yogiM2, yogiV2)

	// A fresh server restored from the checkpoint after step 1 must
	// continue bit for bit like the original.
	r := mustNew(t, yogiOpt)
	if err := r.Restore(saved); err != nil {
		t.Fatal(err)
	}
	y2, err := r.Step(yogiGlobal2, yogiUpdates2, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	sameBits(t, "restored step 2", y2, x2)
	sameBits(t, "restored state", r.State(), s.State())

	// The checkpoint is a copy: later steps must not change it.
	near(t, "saved m", saved[:1], yogiM1...)

	// Restore(nil) starts over: step 1 again gives step 1's result.
	if err := r.Restore(nil); err != nil {
		t.Fatal(err)
	}
	if st := r.State(); st != nil {
		t.Fatalf("State after Restore(nil) = %v", st)
	}
	z1, err := r.Step(yogiGlobal1, yogiUpdates1, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	sameBits(t, "after reset", z1, x1)
}

func TestYogiFailedStepKeepsState(t *testing.T) {
	s := mustNew(t, yogiOpt)
	bad := []Update{upd(1, 1, 0, 3, 1, float32(math.NaN()))}
	if _, err := s.Step(yogiGlobal1, bad, 0.1); err == nil {
		t.Fatal("NaN update accepted")
	}
	if st := s.State(); st != nil {
		t.Fatalf("a failed first step left state %v", st)
	}
	if _, err := s.Step(yogiGlobal1, yogiUpdates1, 0.1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Step(yogiGlobal2, bad, 0.1); err == nil {
		t.Fatal("NaN update accepted")
	}
	checkYogiState(t, s, yogiM1, yogiV1)
	// A different model must not reuse the moments.
	if _, err := s.Step(vec(1, 1), []Update{upd(1, 1, 0, 1, 1)}, 0.1); err == nil ||
		!strings.Contains(err.Error(), "optimizer state does not match") {
		t.Fatalf("step on a different model: err = %v", err)
	}
}

func TestQFedAvgHandComputed(t *testing.T) {
	// lr = 0.5, so L = 2. global [1,1,1]; client A loss 1 at [0,1,1],
	// client B loss 3 at [1,1,3]. F = loss + 1e-10 ≈ loss (the 1e-10
	// moves the results by < 1e-9).
	//
	//	g_A = (global − w_A)·2 = [2, 0, 0],   ‖g_A‖² = 4
	//	g_B = (global − w_B)·2 = [0, 0, -4],  ‖g_B‖² = 16
	global := vec(1, 1, 1)
	updates := []Update{upd(1, 10, 1, 0, 1, 1), upd(2, 99, 3, 1, 1, 3)}
	for _, tc := range []struct {
		name string
		q    float64
		want []float64
	}{
		{
			// ΣΔ = 1·g_A + 3·g_B = [2, 0, -12]
			// h_A = 1·1⁰·4 + 2·1 = 6, h_B = 1·3⁰·16 + 2·3 = 22, Σh = 28
			// x = 1 − ΣΔ/28 = [1 − 2/28, 1, 1 + 12/28] = [13/14, 1, 10/7]
			name: "q=1", q: 1, want: []float64{13.0 / 14, 1, 10.0 / 7},
		},
		{
			// ΣΔ = 1·g_A + 9·g_B = [2, 0, -36]
			// h_A = 2·1¹·4 + 2·1 = 10, h_B = 2·3¹·16 + 2·9 = 114, Σh = 124
			// x = [1 − 2/124, 1, 1 + 36/124] = [61/62, 1, 40/31]
			name: "q=2", q: 2, want: []float64{61.0 / 62, 1, 40.0 / 31},
		},
		{
			// ΣΔ = g_A + g_B = [2, 0, -4]; h_A = h_B = L = 2, Σh = 4
			// x = [1 − 2/4, 1, 1 + 4/4]: the unweighted mean of the w_k
			name: "q=0", q: 0, want: []float64{0.5, 1, 2},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustNew(t, Options{Policy: PolicyQFedAvg, QFedQ: tc.q})
			got, err := s.Step(global, updates, 0.5)
			if err != nil {
				t.Fatal(err)
			}
			near(t, "Step", got, tc.want...)
		})
	}
}

// With q = 0 every client has weight 1 and h_k = L, so q-FedAvg is one
// gradient step of size lr along the mean pseudo-gradient:
// x = global − lr·(1/K)·Σ g_k with g_k = (global − w_k)/lr.
func TestQFedAvgZeroQIsGradientStep(t *testing.T) {
	rng := newRand(7)
	global := randomModel(rng, []int{3, 17, 5000})
	var updates []Update
	for k := range 5 {
		w := randomModel(rng, []int{3, 17, 5000})
		updates = append(updates, Update{ClientID: int64(k), Weights: w, NumSamples: int64(1 + k*k), Loss: float64(k) * 0.7})
	}
	for _, lr := range []float64{1, 0.05, 1e-3} {
		s := mustNew(t, Options{Policy: PolicyQFedAvg, QFedQ: 0})
		got, err := s.Step(global, updates, lr)
		if err != nil {
			t.Fatal(err)
		}
		for ti, gt := range global {
			for j, g := range gt.Data {
				var sum float64
				for _, u := range updates {
					sum += (float64(g) - float64(u.Weights[ti].Data[j])) / lr
				}
				want := float64(g) - lr*sum/float64(len(updates))
				if d := math.Abs(float64(got[ti].Data[j]) - want); d > 1e-6*max(1, math.Abs(want)) {
					t.Fatalf("lr %v: %s[%d] = %v, want %v", lr, gt.Name, j, got[ti].Data[j], want)
				}
			}
		}
	}
}

func TestNew(t *testing.T) {
	def := DefaultOptions()
	for _, tc := range []struct {
		name    string
		opt     Options
		wantErr string // "" for success
	}{
		{"fedavg zero options", Options{}, ""},
		{"none", Options{Policy: PolicyNone}, ""},
		{"fed-prox", Options{Policy: PolicyFedProx}, ""},
		{"yogi defaults", withPolicy(def, PolicyFedYogi), ""},
		{"qfed defaults", withPolicy(def, PolicyQFedAvg), ""},
		{"qfed q=0", Options{Policy: PolicyQFedAvg}, ""},
		{"unknown lists valid", Options{Policy: "fedadam"}, `unknown policy "fedadam" (valid: "" or "none" for FedAvg, "fed-prox", "fed-yogi", "q-fedavg")`},
		{"case matters", Options{Policy: "FED-YOGI"}, "unknown policy"},
		{"yogi zero options", Options{Policy: PolicyFedYogi}, "eta 0"},
		{"yogi tau 0", Options{Policy: PolicyFedYogi, YogiEta: 1}, "tau 0"},
		{"yogi beta 1", Options{Policy: PolicyFedYogi, YogiEta: 1, YogiTau: 1, YogiBeta: 1}, "beta 1"},
		{"yogi beta2 NaN", Options{Policy: PolicyFedYogi, YogiEta: 1, YogiTau: 1, YogiBeta2: math.NaN()}, "beta2 NaN"},
		{"qfed negative q", Options{Policy: PolicyQFedAvg, QFedQ: -1}, "q -1"},
		{"qfed infinite q", Options{Policy: PolicyQFedAvg, QFedQ: math.Inf(1)}, "q +Inf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.opt)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.wantErr == "" && s == nil:
				t.Fatal("nil server")
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func withPolicy(o Options, p string) Options { o.Policy = p; return o }

func TestStepValidation(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(-1))
	good := upd(1, 1, 0.5, 1, 2, 3)
	for _, tc := range []struct {
		name     string
		global   tensor.List
		updates  []Update
		lr       float64
		client   int64  // the client the error must name; -1 for none
		wantErr  string // a part of the message
		policies []string
	}{
		{name: "no updates", updates: nil, client: -1, wantErr: "no updates"},
		{name: "wrong length", updates: []Update{good, upd(7, 1, 0, 1, 2)}, client: 7, wantErr: "shape [2], want [3]"},
		{name: "wrong name", updates: []Update{{ClientID: 8, NumSamples: 1, Weights: tensor.List{{Name: "b", Shape: []int{3}, Data: make([]float32, 3)}}}}, client: 8, wantErr: `name "b"`},
		{name: "data shorter than shape", updates: []Update{{ClientID: 9, NumSamples: 1, Weights: tensor.List{{Name: "w", Shape: []int{3}, Data: make([]float32, 2)}}}}, client: 9, wantErr: "2 values for shape [3]"},
		{name: "extra tensor", updates: []Update{{ClientID: 10, NumSamples: 1, Weights: append(vec(1, 2, 3), tensor.New("b", 1))}}, client: 10, wantErr: "tensor count"},
		{name: "zero samples", updates: []Update{good, upd(11, 0, 0, 1, 2, 3)}, client: 11, wantErr: "sample count 0"},
		{name: "negative samples", updates: []Update{upd(12, -5, 0, 1, 2, 3)}, client: 12, wantErr: "sample count -5"},
		{name: "NaN weight", updates: []Update{good, upd(13, 1, 0, 1, nan, 3)}, client: 13, wantErr: "non-finite"},
		{name: "Inf weight", updates: []Update{upd(14, 1, 0, inf, 2, 3), good}, client: 14, wantErr: "non-finite"},
		{name: "first bad client is named", updates: []Update{upd(15, 1, 0, 1, nan, 3), upd(16, 1, 0, nan, 2, 3)}, client: 15, wantErr: "non-finite"},
		{name: "duplicate client", updates: []Update{good, good}, client: 1, wantErr: "more than one update"},
		{name: "NaN global", global: vec(1, nan, 3), updates: []Update{good}, client: -1, wantErr: "global model"},
		{name: "global data shorter than shape", global: tensor.List{{Name: "w", Shape: []int{3}, Data: make([]float32, 1)}}, updates: []Update{good}, client: -1, wantErr: "global model"},
		{name: "negative loss", updates: []Update{upd(17, 1, -1, 1, 2, 3)}, client: 17, wantErr: "loss -1", policies: []string{PolicyQFedAvg}},
		{name: "NaN loss", updates: []Update{upd(18, 1, math.NaN(), 1, 2, 3)}, client: 18, wantErr: "loss NaN", policies: []string{PolicyQFedAvg}},
		{name: "negative lr", updates: []Update{good}, lr: -0.0001, client: -1, wantErr: "learning rate", policies: []string{PolicyQFedAvg}},
	} {
		policies := tc.policies
		if policies == nil {
			policies = []string{PolicyFedAvg, PolicyFedProx, PolicyFedYogi, PolicyQFedAvg}
		}
		for _, p := range policies {
			t.Run(tc.name+"/"+p, func(t *testing.T) {
				s := mustNew(t, withPolicy(DefaultOptions(), p))
				global := tc.global
				if global == nil {
					global = vec(0, 0, 0)
				}
				lr := tc.lr
				if lr == 0 {
					lr = 0.1
				}
				_, err := s.Step(global, tc.updates, lr)
				checkErr(t, err, tc.client, tc.wantErr)
			})
		}
	}
}

// checkErr checks the message and, for client errors, the ClientError.
func checkErr(t *testing.T, err error, client int64, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want one containing %q", err, want)
	}
	var ce *ClientError
	switch {
	case client < 0 && errors.As(err, &ce):
		t.Fatalf("err = %v names client %d, want none", err, ce.ClientID)
	case client >= 0 && (!errors.As(err, &ce) || ce.ClientID != client):
		t.Fatalf("err = %v, want a ClientError for client %d", err, client)
	}
}

func TestWeightedMeanValidation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		dst     tensor.List
		updates []Update
		client  int64
		wantErr string
	}{
		{"no updates", vec(0, 0, 0), nil, -1, "no updates"},
		{"bad destination", tensor.List{{Name: "w", Shape: []int{3}}}, []Update{upd(1, 1, 0, 1, 2, 3)}, -1, "destination"},
		{"shape", vec(0, 0), []Update{upd(2, 1, 0, 1, 2, 3)}, 2, "shape [3], want [2]"},
		{"samples", vec(0, 0, 0), []Update{upd(3, 0, 0, 1, 2, 3)}, 3, "sample count 0"},
		{"Inf", vec(0, 0, 0), []Update{upd(4, 1, 0, 1, 2, 3), upd(5, 2, 0, 1, float32(math.Inf(1)), 3)}, 5, "non-finite"},
		{"Inf and -Inf cancel to NaN", vec(0, 0, 0), []Update{upd(6, 1, 0, float32(math.Inf(1)), 2, 3), upd(7, 1, 0, float32(math.Inf(-1)), 2, 3)}, 6, "non-finite"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErr(t, WeightedMean(tc.dst, tc.updates), tc.client, tc.wantErr)
		})
	}
}

func TestRestoreValidation(t *testing.T) {
	m := tensor.Tensor{Name: "fed-yogi/m/w", Shape: []int{2}, Data: []float32{1, 2}}
	v := tensor.Tensor{Name: "fed-yogi/v/w", Shape: []int{2}, Data: []float32{1, 2}}
	with := func(t tensor.Tensor, f func(*tensor.Tensor)) tensor.Tensor { t = t.Clone(); f(&t); return t }
	for _, tc := range []struct {
		name    string
		policy  string
		state   tensor.List
		wantErr string
	}{
		{"yogi ok", PolicyFedYogi, tensor.List{m, v}, ""},
		{"yogi empty resets", PolicyFedYogi, tensor.List{}, ""},
		{"yogi odd count", PolicyFedYogi, tensor.List{m}, "1 tensors"},
		{"yogi bad m name", PolicyFedYogi, tensor.List{with(m, func(t *tensor.Tensor) { t.Name = "w" }), v}, `want prefix "fed-yogi/m/"`},
		{"yogi v for another tensor", PolicyFedYogi, tensor.List{m, with(v, func(t *tensor.Tensor) { t.Name = "fed-yogi/v/b" })}, `want "fed-yogi/v/w"`},
		{"yogi shapes differ", PolicyFedYogi, tensor.List{m, with(v, func(t *tensor.Tensor) { t.Shape = []int{1, 2} })}, "second moment"},
		{"yogi short data", PolicyFedYogi, tensor.List{with(m, func(t *tensor.Tensor) { t.Data = t.Data[:1] }), v}, "1 values for shape [2]"},
		{"yogi NaN m", PolicyFedYogi, tensor.List{with(m, func(t *tensor.Tensor) { t.Data[0] = float32(math.NaN()) }), v}, "first moment"},
		{"yogi negative v", PolicyFedYogi, tensor.List{m, with(v, func(t *tensor.Tensor) { t.Data[1] = -1 })}, "negative"},
		{"fedavg nil", PolicyFedAvg, nil, ""},
		{"fedavg non-empty", PolicyFedAvg, tensor.List{m}, "keeps no state"},
		{"qfed non-empty", PolicyQFedAvg, tensor.List{m}, "keeps no state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustNew(t, withPolicy(DefaultOptions(), tc.policy))
			err := s.Restore(tc.state)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
	// A restored state for another model is caught at the next step.
	s := mustNew(t, withPolicy(DefaultOptions(), PolicyFedYogi))
	if err := s.Restore(tensor.List{m, v}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Step(vec(0, 0, 0), []Update{upd(1, 1, 0, 1, 2, 3)}, 0.1); err == nil ||
		!strings.Contains(err.Error(), "does not match the global model") {
		t.Fatalf("err = %v", err)
	}
}

// Step must leave global and the updates untouched, and return fresh memory.
func TestStepDoesNotModifyInputs(t *testing.T) {
	rng := newRand(3)
	shapes := []int{4, 9000}
	global := randomModel(rng, shapes)
	updates := []Update{
		{ClientID: 1, Weights: randomModel(rng, shapes), NumSamples: 3, Loss: 0.5},
		{ClientID: 2, Weights: global, NumSamples: 1, Loss: 0.2}, // aliases global
	}
	before := global.Clone()
	before1 := updates[0].Weights.Clone()
	for _, p := range []string{PolicyFedAvg, PolicyFedYogi, PolicyQFedAvg} {
		s := mustNew(t, withPolicy(DefaultOptions(), p))
		for range 2 {
			out, err := s.Step(global, updates, 0.05)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			sameBits(t, p+" global", global, before)
			sameBits(t, p+" update", updates[0].Weights, before1)
			if &out[0].Data[0] == &global[0].Data[0] {
				t.Fatalf("%s: result aliases global", p)
			}
		}
	}
}
