package golden

import (
	"fmt"
	"math"
	"slices"
)

// DiffTol is what Diff allows between two generations of one fixture.
type DiffTol struct {
	// Values applies to losses, loss sums, state summaries and logits.
	Values Tol
	// Reproducible is the limit of Run.Reproducible: the state and
	// evaluation of runs past it are not compared.
	Reproducible float64
	// Input applies to the generated batches' and initial state's sums,
	// which depend only on the generator (and float64 summation order).
	Input Tol
}

// DefaultDiffTol is `make golden-check`'s tolerance. golden.py pins
// PyTorch to kernels that do not depend on the CPU, so a regeneration is
// expected to reproduce the fixtures exactly; should rounding still differ
// (another libm), ill-conditioned runs amplify it: Noise allows 4 times
// the noise the fixture records, plus 1e-6 relative, and what rounding
// alone decides is left out (Chaos, Reproducible), as in the golden test.
var DefaultDiffTol = DiffTol{
	Values:       Tol{Abs: 1e-6, Rel: 1e-6, Noise: 4, Chaos: 0.1},
	Reproducible: 1e-3,
	Input:        Tol{Rel: 1e-12},
}

// Diff compares a freshly generated fixture (got) with the committed one
// (want): the definition (model, shapes, hyper-parameters, labels, state
// names and the generated values) must be identical; results must be
// within t. Differences in the recorded torch/torchvision versions are
// returned as notes, not errors.
func Diff(got, want *Fixture, t DiffTol) (notes []string, err error) {
	m := &Mismatches{Max: 40}
	if got.Torch != want.Torch || got.Torchvision != want.Torchvision {
		notes = append(notes, fmt.Sprintf("%s: generated with torch %s / torchvision %s, committed with %s / %s",
			want.Model, got.Torch, got.Torchvision, want.Torch, want.Torchvision))
	}
	same := func(what string, g, w any) {
		if fmt.Sprint(g) != fmt.Sprint(w) {
			m.Addf("%s: got %v, want %v", what, g, w)
		}
	}
	same("model", got.Model, want.Model)
	same("input", got.Input, want.Input)
	same("classes", got.Classes, want.Classes)
	same("n", got.N, want.N)
	same("steps", got.Steps, want.Steps)
	same("lr", got.LR, want.LR)
	same("momentum", got.Momentum, want.Momentum)
	same("weight_decay", got.WeightDecay, want.WeightDecay)
	same("fixture_seed", got.FixtureSeed, want.FixtureSeed)
	same("dropout_seed", got.DropoutSeed, want.DropoutSeed)
	for _, b := range []struct {
		name      string
		got, want Batch
	}{{"train_batch", got.TrainBatch, want.TrainBatch}, {"eval_batch", got.EvalBatch, want.EvalBatch}} {
		same(b.name+" labels", b.got.Y, b.want.Y)
		m.Scalar(b.name+" x sum", b.got.XSum, b.want.XSum, 0, t.Input)
		m.Scalar(b.name+" x sum of squares", b.got.XSumSq, b.want.XSumSq, 0, t.Input)
	}
	if len(got.Initial) != len(want.Initial) || len(got.Runs) != len(want.Runs) {
		m.Addf("%d state entries and %d runs, want %d and %d", len(got.Initial), len(got.Runs), len(want.Initial), len(want.Runs))
		return notes, m.Error(want.Model)
	}
	for i, w := range want.Initial {
		g := got.Initial[i]
		what := "initial " + w.Name
		if g.Name != w.Name || !slices.Equal(g.Shape, w.Shape) {
			m.Addf("initial entry %d: got %s%v, want %s%v", i, g.Name, g.Shape, w.Name, w.Shape)
			continue
		}
		m.Scalar(what+" sum", g.Sum, w.Sum, 0, Tol{Abs: t.Input.Rel, Rel: t.Input.Rel})
		m.Scalar(what+" sum of squares", g.SumSq, w.SumSq, 0, t.Input)
		if !slices.Equal(g.Values, w.Values) {
			m.Addf("%s: sampled values %v, want %v", what, g.Values, w.Values)
		}
	}
	same("kernels", got.Kernels, want.Kernels)
	same("noise_runs", got.NoiseRuns, want.NoiseRuns)
	diffEval(m, "initial eval", got.InitialEval, want.InitialEval, want.InitialEvalNoise, t.Values)
	for i, w := range want.Runs {
		g := got.Runs[i]
		what := fmt.Sprintf("run mu=%v steps=%d", w.Mu, w.Steps)
		if g.Mu != w.Mu || g.Steps != w.Steps {
			m.Addf("run %d: mu %v, %d steps, want mu %v, %d steps", i, g.Mu, g.Steps, w.Mu, w.Steps)
			continue
		}
		for s := range w.Losses {
			m.Scalar(fmt.Sprintf("%s loss %d", what, s), g.Losses[s], w.Losses[s], w.LossNoise(s), t.Values)
		}
		if !w.Reproducible(t.Reproducible) {
			m.Skipped += 1 + len(w.Final)
			continue
		}
		diffEval(m, what+" eval", g.Eval, w.Eval, w.EvalNoise, t.Values)
		for j, we := range w.Final {
			ge := g.Final[j]
			m.Entry(what+" "+we.Name, EntryStats{Sum: ge.Sum, SumSq: ge.SumSq, Values: ge.Values}, we, t.Values)
		}
	}
	return notes, m.Error(want.Model)
}

// diffEval compares two evaluations; hit counts must be equal unless the
// noise ensemble disagrees on them.
func diffEval(m *Mismatches, what string, g, w Eval, noise []Eval, t Tol) {
	dev, stable := EvalNoise(w, noise)
	m.Scalar(what+" loss sum", g.LossSum, w.LossSum, dev, t)
	if stable && (g.Top1 != w.Top1 || g.Top5 != w.Top5) {
		m.Addf("%s: top1 %d, top5 %d, want %d, %d", what, g.Top1, g.Top5, w.Top1, w.Top5)
	}
	if len(g.Logits) != len(w.Logits) {
		m.Addf("%s: %d logits, want %d", what, len(g.Logits), len(w.Logits))
		return
	}
	// The logits' noise scale: the loss sum's dev (a loss moves as much
	// as the logits do), relative to the largest logit.
	var zmax float64
	for _, z := range w.Logits {
		zmax = math.Max(zmax, math.Abs(z))
	}
	for i, z := range w.Logits {
		if !t.Close(g.Logits[i], z, zmax, dev) {
			m.Addf("%s: logit %d: got %.9g, want %.9g (|diff| %.3g > %.3g)", what, i, g.Logits[i], z, math.Abs(g.Logits[i]-z), t.Bound(zmax, dev))
			return
		}
	}
}
