// Command speedtable times one training step of the speed table's
// networks with this runtime's CPU backend and, in the same run, with
// PyTorch (scripts/golden/bench_torch.py: Debian's torch on one thread),
// and prints both with their ratio. Both sides use the same method: batch
// 20 of 3x32x32, SGD with momentum and weight decay, the median of the
// timed steps after warm-up steps, every timed step one with a momentum
// buffer (PyTorch's optimizer keeps it from the warm-up; here each timed
// task trains taskSteps steps and counts their mean, as an executor's
// tasks do). It is what `make bench-torch` runs; the README's table comes
// from its output.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"time"

	"github.com/fedscale/fedscale-go/runtime/model"
	"github.com/fedscale/fedscale-go/runtime/model/cpu"
)

// specs are the networks of the table with FedScale's class counts for
// the data sets their example jobs use.
var specs = []model.Spec{
	{Name: model.ResNet18, Channels: 3, Height: 32, Width: 32, Classes: 62},
	{Name: model.MobileNetV2, Channels: 3, Height: 32, Width: 32, Classes: 10},
	{Name: model.ShuffleNetV2x2_0, Channels: 3, Height: 32, Width: 32, Classes: 10},
}

const (
	batch     = 20
	taskSteps = 10 // steps per timed Train call
)

func main() {
	python := flag.String("python", "/usr/bin/python3", "the python3 that has torch and torchvision")
	script := flag.String("script", "scripts/golden/bench_torch.py", "PyTorch's side of the benchmark")
	steps := flag.Int("steps", 10, "timed steps per model (median taken)")
	warmup := flag.Int("warmup", 2, "untimed steps first")
	flag.Parse()
	if *steps < 1 || *warmup < 0 {
		fail(fmt.Errorf("--steps must be at least 1 and --warmup at least 0"))
	}
	runtime.GOMAXPROCS(1) // one thread, like torch.set_num_threads(1)

	ours := map[string]float64{}
	for _, s := range specs {
		sec, err := timeStep(s, *steps, *warmup)
		if err != nil {
			fail(err)
		}
		ours[s.Name] = sec
	}
	var names []string
	for _, s := range specs {
		names = append(names, s.Name)
	}
	args := append([]string{*script, "--steps", fmt.Sprint(*steps), "--warmup", fmt.Sprint(*warmup)}, names...)
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, *python, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		fail(fmt.Errorf("%s %s: %v\n%s", *python, *script, err, stderr.String()))
	}
	var torch struct {
		Torch   string             `json:"torch"`
		Seconds map[string]float64 `json:"seconds"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &torch); err != nil {
		fail(fmt.Errorf("%s printed no JSON: %v\n%s", *script, err, stdout.String()))
	}
	fmt.Printf("one training step, batch %d of 3x32x32, one thread (PyTorch %s: median of %d steps; ours: median over tasks of %d steps of their mean)\n\n", batch, torch.Torch, *steps, taskSteps)
	fmt.Println("| model | fedscale-go | PyTorch | ratio |")
	fmt.Println("|---|---|---|---|")
	for _, s := range specs {
		if t, ok := torch.Seconds[s.Name]; !ok || !(t > 0) {
			fail(fmt.Errorf("%s reported no time for %s", *script, s.Name))
		}
	}
	for _, s := range specs {
		t := torch.Seconds[s.Name]
		fmt.Printf("| %s | %.3f s | %.3f s | %.2f |\n", s.Name, ours[s.Name], t, ours[s.Name]/t)
	}
}

// timeStep returns the median time of one SGD step of spec's network.
func timeStep(spec model.Spec, steps, warmup int) (float64, error) {
	tr, err := cpu.New(spec)
	if err != nil {
		return 0, err
	}
	params, err := model.Init(spec, 1)
	if err != nil {
		return 0, err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	b := model.Batch{X: make([]float32, batch*spec.InputSize()), Y: make([]int32, batch), N: batch}
	for i := range b.X {
		b.X[i] = float32(rng.NormFloat64())
	}
	for i := range b.Y {
		b.Y[i] = int32(rng.IntN(spec.Classes))
	}
	opt := model.SGD{LR: 0.05, Momentum: 0.9, WeightDecay: 5e-4, Seed: 1}
	task := make([]model.Batch, max(taskSteps, warmup))
	for i := range task {
		task[i] = b
	}
	if warmup > 0 {
		if _, err := tr.Train(params, task[:warmup], opt); err != nil {
			return 0, err
		}
	}
	task = task[:taskSteps]
	// At least three timed tasks, and at least steps steps in all.
	var times []float64
	for len(times) < 3 || len(times)*taskSteps < steps {
		start := time.Now()
		if _, err := tr.Train(params, task, opt); err != nil {
			return 0, err
		}
		times = append(times, time.Since(start).Seconds()/taskSteps)
	}
	slices.Sort(times)
	return times[len(times)/2], nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "speedtable:", err)
	os.Exit(1)
}
