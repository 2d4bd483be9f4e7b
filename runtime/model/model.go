// Package model defines the models a federated client can train: their
// specifications, their deterministic parameter initialisation, the batch,
// optimizer and statistics types, and the Trainer interface that compute
// backends implement (runtime/model/cpu, and runtime/model/cuda on NVIDIA
// GPUs).
//
// Only backend-independent definitions belong here: anything that does
// arithmetic on activations lives in a backend package, so that every
// backend is checked against the same names, shapes and rules.
package model

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// Names of the sequential architectures: our own logistic, mlp and lenet5,
// and FedScale's lr (LogisticRegression, one Linear layer named "linear")
// and svm (LinearSVM, one named "fc"), both over the flattened input and
// trained with cross-entropy as FedScale does. The torchvision
// architectures are named in arch.go.
const (
	LeNet5   = "lenet5"
	Logistic = "logistic"
	MLP      = "mlp"
	LR       = "lr"
	SVM      = "svm"
)

// supported is the sequential models (init.go) and the torchvision
// architectures (arch.go), sorted; Supported returns a copy so callers
// cannot change it.
var supported = func() []string {
	var names []string
	for _, m := range []map[string]func(*builder, Shape) *Layer{seqBuilders, archBuilders} {
		for name := range m {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}()

// Supported returns the names of the supported architectures, sorted.
func Supported() []string { return append([]string(nil), supported...) }

// Limits that keep a typo in a job file from asking for terabytes.
const (
	maxInput = 1 << 24 // values per sample
	// MaxParams bounds a model's float32 parameters (1 GiB); readers of
	// model files bound their sizes by it.
	MaxParams = 1 << 28
)

// Spec selects an architecture and the shape of its input and output.
// Inputs are Channels×Height×Width images (28×28 grey is typical).
type Spec struct {
	Name                    string
	Channels, Height, Width int
	Classes                 int // at least 2
}

// InputSize returns the number of values in one sample: C*H*W.
func (s Spec) InputSize() int { return s.Channels * s.Height * s.Width }

// String formats s the way error messages and logs show it.
func (s Spec) String() string {
	return fmt.Sprintf("%s(%dx%dx%d→%d)", s.Name, s.Channels, s.Height, s.Width, s.Classes)
}

// Validate reports whether s names a supported architecture with dimensions
// it can run on.
func (s Spec) Validate() error {
	_, err := Build(s)
	return err
}

func unknownModel(name string) error {
	return fmt.Errorf("unknown model %q (supported: %s)", name, strings.Join(supported, ", "))
}

// checkDims checks the dimensions shared by every architecture.
func (s Spec) checkDims() error {
	if s.Channels < 1 || s.Height < 1 || s.Width < 1 {
		return fmt.Errorf("model %s: input %dx%dx%d: every dimension must be at least 1", s.Name, s.Channels, s.Height, s.Width)
	}
	if s.Channels > maxInput || s.Height > maxInput || s.Width > maxInput ||
		s.Channels*s.Height > maxInput || s.InputSize() > maxInput {
		return fmt.Errorf("model %s: input %dx%dx%d exceeds %d values per sample", s.Name, s.Channels, s.Height, s.Width, maxInput)
	}
	if s.Classes < 2 {
		return fmt.Errorf("model %s: %d classes: need at least 2", s.Name, s.Classes)
	}
	if s.Classes > maxInput {
		return fmt.Errorf("model %s: %d classes exceeds %d", s.Name, s.Classes, maxInput)
	}
	return nil
}

// Batch is a mini-batch of N samples. X holds N*C*H*W values, row-major
// (sample, channel, row, column), nominally in [0,1]; Y holds N labels in
// [0, Classes).
type Batch struct {
	X []float32
	Y []int32
	N int
}

// Validate reports whether b fits spec: lengths match N and every label is
// a class of spec. An empty batch (N == 0) is valid.
func (b Batch) Validate(spec Spec) error {
	if b.N < 0 {
		return fmt.Errorf("batch: negative size %d", b.N)
	}
	if len(b.Y) != b.N {
		return fmt.Errorf("batch: %d labels for %d samples", len(b.Y), b.N)
	}
	in := spec.InputSize()
	if in == 0 || len(b.X)%in != 0 || len(b.X)/in != b.N {
		return fmt.Errorf("batch: %d input values for %d samples of %dx%dx%d", len(b.X), b.N, spec.Channels, spec.Height, spec.Width)
	}
	for i, y := range b.Y {
		if y < 0 || int(y) >= spec.Classes {
			return fmt.Errorf("batch: sample %d: label %d out of range [0,%d)", i, y, spec.Classes)
		}
	}
	return nil
}

// SGD configures local training; it follows torch.optim.SGD. Each step
// uses the gradient of the batch-mean cross-entropy and applies
//
//	g   = grad + WeightDecay*w + ProxMu*(w - Anchor)
//	buf = Momentum*buf + g        (buf starts at zero each Train call)
//	w  -= LR*buf
type SGD struct {
	LR, Momentum, WeightDecay float32 // the executor uses momentum 0.9, weight decay 5e-4
	// ProxMu is FedProx's μ: the proximal term pulls w toward Anchor. The
	// original FedScale added it with the wrong sign, pushing clients away.
	ProxMu float32
	// Anchor holds the global weights at the start of the task; required
	// (and only read) when ProxMu > 0. It must not share memory with the
	// params being trained.
	Anchor tensor.List
	// LossDecay smooths the reported loss: the first step's loss, then
	// (1-LossDecay)*m + LossDecay*loss. FedScale's default is 0.2.
	LossDecay float64
	// Seed draws the task's dropout masks (see DropoutUniform).
	Seed uint64
}

// IsBuffer reports whether a state_dict entry is a buffer rather than a
// trained parameter: batch norm's running statistics and batch counter.
// Buffers get no gradient, weight decay or proximal term; training
// updates them in place and the aggregator averages them like weights.
func IsBuffer(name string) bool {
	switch entryName(name) {
	case "running_mean", "running_var", "num_batches_tracked":
		return true
	}
	return false
}

// IsBatchCounter reports whether a state_dict entry is batch norm's
// num_batches_tracked, an int64 in PyTorch (model files store it so).
func IsBatchCounter(name string) bool { return entryName(name) == "num_batches_tracked" }

// entryName is the last dotted part of a state_dict name: "running_mean"
// of "layer1.0.bn1.running_mean" (the whole name at the root).
func entryName(name string) string { return name[strings.LastIndexByte(name, '.')+1:] }

// DropoutUniform is the uniform draw in [0,1) deciding element i of
// dropout layer layer at step step of a task seeded with seed: the element
// is kept when the draw is at least the dropout probability. It is a pure
// function, so masks do not depend on which executor runs the task.
func DropoutUniform(seed uint64, step, layer, i int) float32 {
	h := splitmix64(seed ^ uint64(step)<<48 ^ uint64(layer)<<40 ^ uint64(i))
	return float32(h>>40) / (1 << 24)
}

// Validate checks the hyper-parameters and, when ProxMu > 0, that Anchor
// matches params.
func (o SGD) Validate(params tensor.List) error {
	for _, h := range []struct {
		name string
		v    float32
	}{{"learning rate", o.LR}, {"momentum", o.Momentum}, {"weight decay", o.WeightDecay}, {"proximal mu", o.ProxMu}} {
		if math.IsNaN(float64(h.v)) || math.IsInf(float64(h.v), 0) || h.v < 0 {
			return fmt.Errorf("sgd: %s %v: must be finite and non-negative", h.name, h.v)
		}
	}
	if math.IsNaN(o.LossDecay) || o.LossDecay < 0 || o.LossDecay > 1 {
		return fmt.Errorf("sgd: loss decay %v: must be in [0,1]", o.LossDecay)
	}
	if o.ProxMu > 0 {
		if o.Anchor == nil {
			return errors.New("sgd: proximal mu > 0 needs the global weights as Anchor")
		}
		if err := params.CheckCompatible(o.Anchor); err != nil {
			return fmt.Errorf("sgd: anchor does not match the parameters: %w", err)
		}
		// An anchor sharing memory with params would move with them and
		// silently turn FedProx off.
		for i := range params {
			if len(params[i].Data) > 0 && &params[i].Data[0] == &o.Anchor[i].Data[0] {
				return fmt.Errorf("sgd: anchor tensor %q shares memory with the parameters: pass a copy of the global weights", params[i].Name)
			}
		}
	}
	return nil
}

// TrainStats summarises one Train call.
type TrainStats struct {
	// MovingLoss is the LossDecay-smoothed batch-mean loss (see SGD).
	MovingLoss float64
	// MeanLoss is the mean per-sample loss over every sample trained on,
	// each measured before the step that used it.
	MeanLoss float64
	Steps    int // batches trained on
	Samples  int // samples over all batches
	// Losses holds each step's batch-mean cross-entropy, measured before
	// the step (without FedProx's proximal term).
	Losses []float64

	lossSum float64 // summed per-sample loss, behind MeanLoss
}

// Record adds one step to s: loss is the step's summed per-sample loss
// over n samples, decay the SGD's LossDecay. Backends call it after each
// step so every backend reports the same statistics the same way.
func (s *TrainStats) Record(loss float64, n int, decay float64) {
	mean := loss / float64(n)
	s.Losses = append(s.Losses, mean)
	if s.Steps == 0 {
		s.MovingLoss = mean
	} else {
		s.MovingLoss = (1-decay)*s.MovingLoss + decay*mean
	}
	s.lossSum += loss
	s.Steps++
	s.Samples += n
	s.MeanLoss = s.lossSum / float64(s.Samples)
}

// EvalStats holds summed results of an evaluation, so that results of
// several batches or executors add up.
//
// A sample is a top-k hit when fewer than k classes rank ahead of its label,
// where class j ranks ahead of label y if its logit is larger, or equal with
// j < y (ties go to the lower class, like argmax). A NaN logit for the label
// is never a hit. Top5 uses k = min(5, Classes).
type EvalStats struct {
	LossSum    float64 // summed per-sample cross-entropy (natural log)
	Top1, Top5 int64
	Count      int64 // samples evaluated
}

// Add accumulates o into e.
func (e *EvalStats) Add(o EvalStats) {
	e.LossSum += o.LossSum
	e.Top1 += o.Top1
	e.Top5 += o.Top5
	e.Count += o.Count
}

// Trainer is the compute seam: the CPU backend and the CUDA one.
// A Trainer is used by one goroutine at a time; it keeps scratch memory
// between calls, so a long-lived Trainer per worker avoids allocation.
type Trainer interface {
	// Spec returns the model the Trainer was built for.
	Spec() Spec
	// Train runs one SGD step per batch, updating params in place. The
	// momentum buffer starts at zero on every call: one call is one client
	// task. It returns an error if a step's loss or the resulting weights
	// are not finite (the stats then cover the steps completed).
	Train(params tensor.List, batches []Batch, opt SGD) (TrainStats, error)
	// Evaluate returns the summed loss and hit counts of params on b.
	Evaluate(params tensor.List, b Batch) (EvalStats, error)
}
