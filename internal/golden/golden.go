// Package golden reads the golden fixtures that scripts/golden/golden.py
// writes with PyTorch (runtime/model/cpu/testdata/golden/<model>.json) and
// compares them: the CPU backend's golden test checks its training against
// them, and goldendiff (`make golden-check`) checks fresh fixtures against
// the committed ones.
//
// Every fixture carries, beside PyTorch's float32 results, those of a
// noise ensemble (NoiseRuns): the same computation in float64, and in
// float32 with every layer's output and gradient jittered by one ulp, as
// another float32 implementation would round. The largest distance from
// the ensemble is each result's noise (Run.LossNoise, Entry.Dev, ...).
// Batch norm over a batch of 4 makes the deeper models' gradients so
// ill-conditioned (condition numbers of 1e4 and more) that rounding alone
// moves their results by percents after a step or two; Tol.Noise scales
// the noise into the tolerance, so a comparison is as strict as rounding
// allows and never stricter.
package golden

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Samples is the number of values a fixture records per state entry after
// training; InitialSamples per entry of the generated initial state.
const (
	Samples        = 64
	InitialSamples = 8
)

// maxFile bounds what Load reads: the largest fixture is under 1 MiB.
const maxFile = 64 << 20

// Fixture is one model's golden file.
type Fixture struct {
	Model       string  `json:"model"`
	Input       []int   `json:"input"` // C, H, W
	Classes     int     `json:"classes"`
	N           int     `json:"n"`     // samples per batch
	Steps       int     `json:"steps"` // SGD steps of the contract's runs (each run has its own)
	LR          float64 `json:"lr"`
	Momentum    float64 `json:"momentum"`
	WeightDecay float64 `json:"weight_decay"`
	FixtureSeed uint64  `json:"fixture_seed"`
	DropoutSeed uint64  `json:"dropout_seed"`
	Torch       string  `json:"torch"`
	Torchvision string  `json:"torchvision"`
	// Kernels records the PyTorch kernel settings (ATen CPU capability,
	// oneDNN, threads) that golden.py pins so results do not depend on the
	// CPU generating them.
	Kernels string `json:"kernels"`
	// NoiseRuns names the members of the noise ensemble, in the order of
	// every *_noise list.
	NoiseRuns []string `json:"noise_runs"`

	TrainBatch Batch `json:"train_batch"`
	EvalBatch  Batch `json:"eval_batch"`

	// Initial summarises the generated state (InitialSamples values per
	// entry), in state_dict order.
	Initial          []Entry `json:"initial"`
	InitialEval      Eval    `json:"initial_eval"`
	InitialEvalNoise []Eval  `json:"initial_eval_noise"` // without logits
	Runs             []Run   `json:"runs"`
}

// Batch describes a generated batch: its input's sum and sum of squares
// (float64) and its labels.
type Batch struct {
	XSum   float64 `json:"x_sum"`
	XSumSq float64 `json:"x_sumsq"`
	Y      []int32 `json:"y"`
}

// Entry summarises one state_dict entry: Values are the entry's elements
// at SampleIndex(Count, k) (float32 values, exact after Load). Dev, in runs only, holds the noise of Sum, of
// SumSq, and the largest of the sampled values'.
type Entry struct {
	Name   string    `json:"name"`
	Shape  []int     `json:"shape"`
	Count  int       `json:"count"`
	Sum    float64   `json:"sum"`
	SumSq  float64   `json:"sumsq"`
	Values []float64 `json:"values"`
	Dev    []float64 `json:"dev,omitempty"`
}

// Eval is an evaluation on the eval batch (model.EvalStats' rules). Logits
// are N×Classes, row-major; the noise ensemble's have none.
type Eval struct {
	Top1    int64     `json:"top1"`
	Top5    int64     `json:"top5"`
	LossSum float64   `json:"loss_sum"`
	Logits  []float64 `json:"logits,omitempty"`
}

// Run is one training run from the initial state: Steps SGD steps, all on
// the training batch, with FedProx's Mu (0: plain SGD), then an
// evaluation.
type Run struct {
	Mu          float64     `json:"mu"`
	Steps       int         `json:"steps"`
	Losses      []float64   `json:"losses"`       // float32 values, before each step
	LossesNoise [][]float64 `json:"losses_noise"` // each noise run's
	Eval        Eval        `json:"eval"`
	EvalNoise   []Eval      `json:"eval_noise"`
	Final       []Entry     `json:"final"`
}

// LossNoise returns the noise of step s's loss.
func (r *Run) LossNoise(s int) float64 {
	var d float64
	for _, l := range r.LossesNoise {
		d = math.Max(d, math.Abs(l[s]-r.Losses[s]))
	}
	return d
}

// Reproducible reports whether rounding leaves the run's outcome in place:
// whether the noise of its last loss is at most limit relative to it. The
// state and evaluation a run ends with are worth comparing only then; in
// the deep batch-norm models two or three steps on a batch of 4 amplify
// rounding into changes of the order of the values themselves.
func (r *Run) Reproducible(limit float64) bool {
	last := len(r.Losses) - 1
	return last >= 0 && r.LossNoise(last) <= limit*math.Abs(r.Losses[last])
}

// EvalNoise returns the noise of e's loss sum, and whether every noise
// run agrees with e's hit counts.
func EvalNoise(e Eval, noise []Eval) (lossSum float64, hitsStable bool) {
	hitsStable = true
	for _, n := range noise {
		lossSum = math.Max(lossSum, math.Abs(n.LossSum-e.LossSum))
		hitsStable = hitsStable && n.Top1 == e.Top1 && n.Top5 == e.Top5
	}
	return lossSum, hitsStable
}

// SampleIndex returns the indices a summary samples from n elements: all
// of them when n <= k, else round(i*(n-1)/(k-1)) for i < k, halves up.
func SampleIndex(n, k int) []int {
	if n <= k {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	idx := make([]int, k)
	for i := range idx {
		idx[i] = (2*i*(n-1) + k - 1) / (2 * (k - 1))
	}
	return idx
}

// Load reads and checks one fixture.
func Load(path string) (*Fixture, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxFile {
		return nil, fmt.Errorf("golden fixture %s: %d bytes exceeds %d", path, fi.Size(), maxFile)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f Fixture
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("golden fixture %s: %w", path, err)
	}
	if err := f.check(); err != nil {
		return nil, fmt.Errorf("golden fixture %s: %w", path, err)
	}
	f.roundFloat32()
	return &f, nil
}

// roundFloat32 makes the float32 results exact again: golden.py writes
// them as the shortest decimals that read back to them as float32.
func (f *Fixture) roundFloat32() {
	round := func(vs []float64) {
		for i, v := range vs {
			vs[i] = float64(float32(v))
		}
	}
	for _, e := range f.Initial {
		round(e.Values)
	}
	round(f.InitialEval.Logits)
	for _, r := range f.Runs {
		round(r.Losses)
		round(r.Eval.Logits)
		for _, e := range r.Final {
			round(e.Values)
		}
	}
}

// LoadDir reads every *.json fixture in dir, sorted by model name.
func LoadDir(dir string) ([]*Fixture, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("golden: no fixtures (*.json) in %s", dir)
	}
	var out []*Fixture
	for _, p := range paths {
		f, err := Load(p)
		if err != nil {
			return nil, err
		}
		if want := strings.TrimSuffix(filepath.Base(p), ".json"); f.Model != want {
			return nil, fmt.Errorf("golden fixture %s: holds model %q", p, f.Model)
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b *Fixture) int { return strings.Compare(a.Model, b.Model) })
	return out, nil
}

// check validates the lengths and ranges a reader relies on.
func (f *Fixture) check() error {
	if f.Model == "" {
		return errors.New("no model name")
	}
	if len(f.Input) != 3 || f.Input[0] < 1 || f.Input[1] < 1 || f.Input[2] < 1 {
		return fmt.Errorf("input %v: want [C,H,W], each at least 1", f.Input)
	}
	if f.Classes < 2 || f.N < 1 || f.Steps < 1 {
		return fmt.Errorf("classes %d, n %d, steps %d: want at least 2, 1, 1", f.Classes, f.N, f.Steps)
	}
	for _, b := range []struct {
		name string
		b    Batch
	}{{"train_batch", f.TrainBatch}, {"eval_batch", f.EvalBatch}} {
		if len(b.b.Y) != f.N {
			return fmt.Errorf("%s: %d labels for n=%d", b.name, len(b.b.Y), f.N)
		}
		for _, y := range b.b.Y {
			if y < 0 || int(y) >= f.Classes {
				return fmt.Errorf("%s: label %d out of range [0,%d)", b.name, y, f.Classes)
			}
		}
	}
	if err := checkEntries("initial", f.Initial, InitialSamples, false); err != nil {
		return err
	}
	if len(f.NoiseRuns) == 0 {
		return errors.New("no noise runs")
	}
	if err := f.checkEval("initial_eval", f.InitialEval, true); err != nil {
		return err
	}
	if len(f.InitialEvalNoise) != len(f.NoiseRuns) {
		return fmt.Errorf("initial_eval_noise: %d evaluations for %d noise runs", len(f.InitialEvalNoise), len(f.NoiseRuns))
	}
	if len(f.Runs) == 0 {
		return errors.New("no runs")
	}
	for i, r := range f.Runs {
		what := fmt.Sprintf("run %d (mu %v, %d steps)", i, r.Mu, r.Steps)
		if r.Steps < 1 || r.Steps > 1000 {
			return fmt.Errorf("%s: steps out of range [1,1000]", what)
		}
		if len(r.Losses) != r.Steps {
			return fmt.Errorf("%s: %d losses", what, len(r.Losses))
		}
		if len(r.LossesNoise) != len(f.NoiseRuns) || len(r.EvalNoise) != len(f.NoiseRuns) {
			return fmt.Errorf("%s: %d noise losses and %d noise evaluations for %d noise runs", what, len(r.LossesNoise), len(r.EvalNoise), len(f.NoiseRuns))
		}
		for _, l := range r.LossesNoise {
			if len(l) != r.Steps {
				return fmt.Errorf("%s: %d noise losses", what, len(l))
			}
		}
		if err := f.checkEval(what+" eval", r.Eval, true); err != nil {
			return err
		}
		if err := checkEntries(what+" final", r.Final, Samples, true); err != nil {
			return err
		}
		if len(r.Final) != len(f.Initial) {
			return fmt.Errorf("%s: %d final entries, %d initial", what, len(r.Final), len(f.Initial))
		}
		for j := range r.Final {
			if r.Final[j].Name != f.Initial[j].Name || !slices.Equal(r.Final[j].Shape, f.Initial[j].Shape) {
				return fmt.Errorf("%s: final entry %d is %s%v, initial %s%v", what, j, r.Final[j].Name, r.Final[j].Shape, f.Initial[j].Name, f.Initial[j].Shape)
			}
		}
	}
	return nil
}

func (f *Fixture) checkEval(what string, e Eval, logits bool) error {
	if e.Top1 < 0 || e.Top1 > e.Top5 || e.Top5 > int64(f.N) {
		return fmt.Errorf("%s: top1 %d, top5 %d of %d samples", what, e.Top1, e.Top5, f.N)
	}
	if logits && len(e.Logits) != f.N*f.Classes {
		return fmt.Errorf("%s: %d logits, want %d", what, len(e.Logits), f.N*f.Classes)
	}
	return nil
}

func checkEntries(what string, es []Entry, k int, dev bool) error {
	if len(es) == 0 {
		return fmt.Errorf("%s: no state entries", what)
	}
	for _, e := range es {
		n := 1
		for _, d := range e.Shape {
			if d < 1 || d > 1<<30 || n > (1<<31)/d {
				return fmt.Errorf("%s: %s: bad shape %v", what, e.Name, e.Shape)
			}
			n *= d
		}
		if e.Count != n {
			return fmt.Errorf("%s: %s: count %d for shape %v", what, e.Name, e.Count, e.Shape)
		}
		if want := min(n, k); len(e.Values) != want {
			return fmt.Errorf("%s: %s: %d sampled values, want %d", what, e.Name, len(e.Values), want)
		}
		if dev && len(e.Dev) != 3 {
			return fmt.Errorf("%s: %s: dev has %d values, want 3", what, e.Name, len(e.Dev))
		}
	}
	return nil
}

// Tol is a tolerance: got is close to want when
//
//	|got - want| <= Abs + Rel*scale + Noise*dev
//
// where scale is |want| for scalars (see each comparison for aggregates)
// and dev is the quantity's noise (see the package comment). When Chaos is
// not zero, a quantity whose noise exceeds Chaos*scale is not compared at
// all (Mismatches.Skipped counts it): rounding alone moves it that much,
// so its distribution has tails no multiple of the sampled noise bounds.
type Tol struct {
	Abs, Rel, Noise, Chaos float64
}

// chaotic reports whether dev is too large, relative to scale, to compare.
func (t Tol) chaotic(scale, dev float64) bool {
	return t.Chaos > 0 && dev > t.Chaos*scale
}

// Close reports whether got is within t of want, given dev and scale.
func (t Tol) Close(got, want, scale, dev float64) bool {
	if math.IsNaN(got) || math.IsNaN(want) {
		return math.IsNaN(got) && math.IsNaN(want)
	}
	if math.IsInf(want, 0) {
		return got == want
	}
	return math.Abs(got-want) <= t.Abs+t.Rel*scale+t.Noise*dev
}

// Bound returns the allowed distance for want, given dev and scale.
func (t Tol) Bound(scale, dev float64) float64 { return t.Abs + t.Rel*scale + t.Noise*dev }

// Mismatches collects comparison failures, each a line naming what
// differs; it stops recording (but keeps counting) after Max lines.
type Mismatches struct {
	Max     int
	Lines   []string
	Count   int
	Skipped int // comparisons left out as chaotic (see Tol.Chaos)
	Checked int // comparisons made
}

// Addf records one mismatch.
func (m *Mismatches) Addf(format string, args ...any) {
	m.Count++
	if m.Max == 0 || len(m.Lines) < m.Max {
		m.Lines = append(m.Lines, fmt.Sprintf(format, args...))
	}
}

// Scalar compares one value.
func (m *Mismatches) Scalar(what string, got, want, dev float64, t Tol) {
	if t.chaotic(math.Abs(want), dev) {
		m.Skipped++
		return
	}
	m.Checked++
	if !t.Close(got, want, math.Abs(want), dev) {
		m.Addf("%s: got %.9g, want %.9g (|diff| %.3g > %.3g)", what, got, want, math.Abs(got-want), t.Bound(math.Abs(want), dev))
	}
}

// EntryStats are the values of one state entry to compare with an Entry:
// its sum and sum of squares and the elements at SampleIndex.
type EntryStats struct {
	Sum, SumSq float64
	Values     []float64
}

// Stats computes EntryStats of data for comparison with e.
func Stats(data []float32, k int) EntryStats {
	var s EntryStats
	for _, v := range data {
		f := float64(v)
		s.Sum += f
		s.SumSq += f * f
	}
	for _, i := range SampleIndex(len(data), k) {
		s.Values = append(s.Values, float64(data[i]))
	}
	return s
}

// Entry compares got with want: each sampled value with scale |value|,
// the sum with scale sqrt(Count*SumSq) (a bound on the sum of absolute
// values, so cancellation in the sum does not make it stricter than the
// values), and the sum of squares with scale 2*SumSq. want.Dev, when
// present, is the dev of each (the sampled values share the largest).
func (m *Mismatches) Entry(what string, got EntryStats, want Entry, t Tol) {
	var dSum, dSq, dVal float64
	if len(want.Dev) == 3 {
		dSum, dSq, dVal = want.Dev[0], want.Dev[1], want.Dev[2]
	}
	if len(got.Values) != len(want.Values) {
		m.Addf("%s: %d sampled values, want %d", what, len(got.Values), len(want.Values))
		return
	}
	l1 := math.Sqrt(float64(want.Count) * want.SumSq)
	switch {
	case t.chaotic(l1, dSum):
		m.Skipped++
	case !t.Close(got.Sum, want.Sum, l1, dSum):
		m.Addf("%s: sum %.9g, want %.9g (|diff| %.3g > %.3g)", what, got.Sum, want.Sum, math.Abs(got.Sum-want.Sum), t.Bound(l1, dSum))
		fallthrough
	default:
		m.Checked++
	}
	switch {
	case t.chaotic(2*want.SumSq, dSq):
		m.Skipped++
	case !t.Close(got.SumSq, want.SumSq, 2*want.SumSq, dSq):
		m.Addf("%s: sum of squares %.9g, want %.9g (|diff| %.3g > %.3g)", what, got.SumSq, want.SumSq, math.Abs(got.SumSq-want.SumSq), t.Bound(2*want.SumSq, dSq))
		fallthrough
	default:
		m.Checked++
	}
	// The sampled values share one noise (the largest); they are skipped
	// as chaotic only against the entry's root-mean-square value.
	rms := math.Sqrt(want.SumSq / float64(max(want.Count, 1)))
	if t.chaotic(rms, dVal) {
		m.Skipped += len(want.Values)
		return
	}
	idx := SampleIndex(want.Count, len(want.Values))
	bad := 0
	for i, w := range want.Values {
		g := got.Values[i]
		m.Checked++
		if !t.Close(g, w, math.Abs(w), dVal) {
			if bad < 3 {
				m.Addf("%s[%d]: got %.9g, want %.9g (|diff| %.3g > %.3g)", what, idx[i], g, w, math.Abs(g-w), t.Bound(math.Abs(w), dVal))
			}
			bad++
		}
	}
	if bad > 3 {
		m.Addf("%s: %d of %d sampled values differ", what, bad, len(want.Values))
	}
}

// Error returns nil when nothing differed, else an error listing the
// recorded lines.
func (m *Mismatches) Error(what string) error {
	if m.Count == 0 {
		return nil
	}
	more := ""
	if m.Count > len(m.Lines) {
		more = fmt.Sprintf("\n  ... and %d more", m.Count-len(m.Lines))
	}
	return fmt.Errorf("%s: %d mismatches:\n  %s%s", what, m.Count, strings.Join(m.Lines, "\n  "), more)
}
