// Package device chooses where an executor trains: the executor's
// --device flag (auto, cpu, cuda or cuda:N) or, without it, FedScale's
// use_cuda and cuda_device keys; and the start-up self-check that keeps a
// GPU that disagrees with the CPU backend from training anything.
//
// The GPU backend itself is optional: only an executor built with the cuda
// tag has one (runtime/model/cuda), and it hands Select an Opener. The
// untagged build passes none, so it stays a static binary.
package device

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/fedscale/fedscale-go/runtime/model"
	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// Kind is what a Choice asks for.
type Kind int

const (
	Auto Kind = iota // the GPU when one is usable, else the CPU
	CPU
	CUDA // a GPU or an error
)

// Choice is a parsed --device value.
type Choice struct {
	Kind Kind
	// Ordinal is the GPU (cuda:N, cuda_device); -1 leaves it to the
	// slot's default, the first visible GPU.
	Ordinal int
	// Slot: Ordinal is the rank's GPU of worker_ips (config.Job.GPUOf),
	// numbered as on its host. A process that does not see that GPU was
	// given its own by the container runtime (Docker's device requests, a
	// Kubernetes nvidia.com/gpu limit), where it is cuda:0.
	Slot bool
}

// Parse reads --device: auto, cpu, cuda or cuda:N.
func Parse(s string) (Choice, error) {
	switch s {
	case "auto":
		return Choice{Kind: Auto, Ordinal: -1}, nil
	case "cpu":
		return Choice{Kind: CPU, Ordinal: -1}, nil
	case "cuda":
		return Choice{Kind: CUDA, Ordinal: -1}, nil
	}
	if rest, ok := strings.CutPrefix(s, "cuda:"); ok {
		n, err := strconv.Atoi(rest)
		if err == nil && n >= 0 && n < 1024 {
			return Choice{Kind: CUDA, Ordinal: n}, nil
		}
	}
	return Choice{}, fmt.Errorf("--device %q: want auto, cpu, cuda or cuda:N (N a GPU index, 0..1023)", s)
}

// FromConf is the choice FedScale's keys make when --device is not given:
// use_cuda false trains on the CPU; use_cuda true (FedScale's default)
// uses the GPU cuda_device (-1: the first) when one is usable, else the
// CPU.
func FromConf(useCuda bool, cudaDevice int) Choice {
	if !useCuda {
		return Choice{Kind: CPU, Ordinal: -1}
	}
	return Choice{Kind: Auto, Ordinal: cudaDevice}
}

func (c Choice) String() string {
	switch c.Kind {
	case CPU:
		return "cpu"
	case CUDA:
		if c.Ordinal >= 0 {
			return "cuda:" + strconv.Itoa(c.Ordinal)
		}
		return "cuda"
	}
	if c.Ordinal >= 0 {
		return "auto (cuda:" + strconv.Itoa(c.Ordinal) + " if usable)"
	}
	return "auto"
}

// NewTrainer builds a backend's trainer (runtime/executor.NewTrainer).
type NewTrainer func(model.Spec) (model.Trainer, error)

// GPU is an opened GPU backend.
type GPU interface {
	String() string // which device, for the log
	New(model.Spec) (model.Trainer, error)
}

// Opener opens GPU ordinal; nil when the binary has no GPU backend.
type Opener func(ordinal int) (GPU, error)

// ErrNotVisible is (wrapped in) an Opener's error for a GPU index the
// process does not see.
var ErrNotVisible = errors.New("no such GPU visible")

// ErrNotBuilt is Select's error for --device cuda in a binary without the
// CUDA backend.
var ErrNotBuilt = errors.New("this executor was built without the CUDA backend (build tag cuda; the -cuda images, fsbuild --cuda, carry it)")

// Select returns the trainer factory for c and what it chose. With Auto a
// GPU that cannot be opened means the CPU, and why is logged; with CUDA it
// is an error. A GPU's trainers pass the self-check (Checked) first.
func Select(c Choice, open Opener, cpu NewTrainer, logf func(format string, args ...any)) (NewTrainer, string, error) {
	if c.Kind == CPU {
		return cpu, "cpu", nil
	}
	ordinal := max(c.Ordinal, 0)
	var gpu GPU
	err := ErrNotBuilt
	if open != nil {
		gpu, err = open(ordinal)
		if c.Slot && ordinal > 0 && errors.Is(err, ErrNotVisible) {
			logf("device: worker_ips puts this executor on GPU %d of its host, which it does not see (%v): taking cuda:0, the GPU its container was given", ordinal, err)
			gpu, err = open(0)
		}
	}
	if err != nil {
		if c.Kind == CUDA {
			return nil, "", fmt.Errorf("--device %s: %w", c, err)
		}
		logf("device auto: training on the CPU: %v", err)
		return cpu, "cpu", nil
	}
	logf("device %s: training on %s once each model passes a self-check against the CPU backend", c, gpu)
	return Checked(gpu, cpu, c.Kind == CUDA, logf), gpu.String(), nil
}

// Tolerances of the self-check: the step's loss relative, and the
// whole model's update (the parameters' change in the step) relative in
// L2 norm. Rounding alone moves the update of the deep networks at small
// batches by a few percent (measured on the kernels' emulation with
// differently rounded products: up to 4.4% for mobilenet_v2 at 32x32, the
// batch norms of 1x1 planes amplify it); a wrong kernel moves it by its
// whole size.
const (
	LossTolerance   = 1e-4
	UpdateTolerance = 0.25
)

// Checked wraps gpu so that the first trainer of each model runs the
// self-check (SelfCheck) before it is handed out. A model that fails it is
// refused on the GPU: an error when strict (--device cuda), else the CPU
// backend's trainers for it, logged.
func Checked(gpu GPU, cpu NewTrainer, strict bool, logf func(format string, args ...any)) NewTrainer {
	var mu sync.Mutex
	verdict := map[model.Spec]error{}
	return func(spec model.Spec) (model.Trainer, error) {
		mu.Lock()
		err, done := verdict[spec]
		if !done {
			err = SelfCheck(spec, gpu.New, cpu)
			verdict[spec] = err
			if err == nil {
				logf("device self-check: %s agrees with the CPU backend on %s", gpu, spec)
			} else if !strict {
				logf("device self-check: refusing %s for %s, training on the CPU: %v", gpu, spec, err)
			}
		}
		mu.Unlock()
		switch {
		case err == nil:
			return gpu.New(spec)
		case strict:
			return nil, fmt.Errorf("device self-check: refusing %s for %s (--device cuda): %w", gpu, spec, err)
		}
		return cpu(spec)
	}
}

// SelfCheck trains spec for one step on a fixed batch of 8 with both
// backends from the same initial weights and compares the loss and every
// updated tensor.
func SelfCheck(spec model.Spec, gpu, ref NewTrainer) error {
	init, err := model.Init(spec, 1)
	if err != nil {
		return err
	}
	// Samples that differ in brightness as well as in noise: batch norm
	// over a few near-identical samples (random noise looks alike deep in
	// a network) divides by a variance near zero and turns rounding into
	// disagreement, refusing a correct GPU.
	const n = 8
	in := spec.InputSize()
	b := model.Batch{N: n, X: make([]float32, n*in), Y: make([]int32, n)}
	for i := range b.X {
		s := i / in
		b.X[i] = 0.8*float32(s)/n + 0.2*model.DropoutUniform(7, 0, 0, i) // fixed, in [0,1)
	}
	for i := range b.Y {
		b.Y[i] = int32((i * 7) % spec.Classes)
	}
	// One step: further steps amplify rounding chaotically in the deep
	// networks' batch norms at these small sizes.
	opt := model.SGD{LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4, LossDecay: 0.2, Seed: 3}
	run := func(newT NewTrainer, what string) (tensor.List, model.TrainStats, error) {
		tr, err := newT(spec)
		if err != nil {
			return nil, model.TrainStats{}, fmt.Errorf("%s backend: %w", what, err)
		}
		if c, ok := tr.(interface{ Close() error }); ok {
			defer c.Close() // a GPU trainer's device memory
		}
		p := init.Clone()
		st, err := tr.Train(p, []model.Batch{b}, opt)
		if err != nil {
			return nil, st, fmt.Errorf("%s backend: %w", what, err)
		}
		return p, st, nil
	}
	gp, gst, err := run(gpu, "GPU")
	if err != nil {
		return err
	}
	cp, cst, err := run(ref, "CPU")
	if err != nil {
		return err
	}
	if err := Compare(cst, gst, cp, gp, LossTolerance, math.Inf(1)); err != nil {
		return err
	}
	return CompareUpdate(init, cp, gp, UpdateTolerance)
}

// CompareUpdate checks that b's change from init is within tol of a's in
// L2 norm over every trained tensor (buffers aside), relative to a's.
func CompareUpdate(init, a, b tensor.List, tol float64) error {
	var diff, norm float64
	for i := range a {
		if model.IsBuffer(a[i].Name) {
			continue
		}
		for j, v := range a[i].Data {
			ua := float64(v) - float64(init[i].Data[j])
			ub := float64(b[i].Data[j]) - float64(init[i].Data[j])
			diff += (ua - ub) * (ua - ub)
			norm += ua * ua
		}
	}
	if r := math.Sqrt(diff / norm); !(r <= tol) {
		return fmt.Errorf("the step's update differs from the CPU backend's by %.3g of its size (tolerance %g)", r, tol)
	}
	return nil
}

// Compare checks b's losses and weights against reference a: each loss
// within lossTol relative, each tensor within weightTol of its largest
// reference magnitude (at least 1); a NaN anywhere is a disagreement.
func Compare(a, b model.TrainStats, pa, pb tensor.List, lossTol, weightTol float64) error {
	if len(a.Losses) != len(b.Losses) {
		return fmt.Errorf("%d steps, the CPU backend %d", len(b.Losses), len(a.Losses))
	}
	for i := range a.Losses {
		if d := math.Abs(a.Losses[i] - b.Losses[i]); !(d <= lossTol*math.Max(math.Abs(a.Losses[i]), 1e-6)) {
			return fmt.Errorf("step %d: loss %v, the CPU backend's %v (tolerance %g relative)", i, b.Losses[i], a.Losses[i], lossTol)
		}
	}
	if err := pa.CheckCompatible(pb); err != nil {
		return err
	}
	for i := range pa {
		scale := 1.0
		for _, v := range pa[i].Data {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		for j, v := range pa[i].Data {
			w := pb[i].Data[j]
			if d := math.Abs(float64(v) - float64(w)); !(d <= weightTol*scale) {
				return fmt.Errorf("tensor %q[%d]: %v, the CPU backend's %v (tolerance %g of %g)", pa[i].Name, j, w, v, weightTol, scale)
			}
		}
	}
	return nil
}
