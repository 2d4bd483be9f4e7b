package cpu

import (
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/fedscale/fedscale-go/runtime/model"
)

func threadCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(1, &ru) // RUSAGE_THREAD
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestZZCPUTime(t *testing.T) {
	if os.Getenv("ZZ") == "" {
		t.Skip()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, spec := range benchSpecs {
		tr, _ := New(spec)
		global, _ := model.Init(spec, 1)
		params := global.Clone()
		batches := synthBatches(spec, 10, 20, 2)
		opt := model.SGD{LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4, LossDecay: 0.2}
		tr.Train(params, batches, opt)
		best := time.Hour
		for rep := 0; rep < 5; rep++ {
			n := 5
			if spec.Name == "logistic" {
				n = 200
			}
			start := threadCPU()
			for i := 0; i < n; i++ {
				for j := range params {
					copy(params[j].Data, global[j].Data)
				}
				tr.Train(params, batches, opt)
			}
			d := (threadCPU() - start) / time.Duration(n)
			best = min(best, d)
		}
		test := synthBatches(spec, 1, 128, 3)[0]
		beste := time.Hour
		for rep := 0; rep < 5; rep++ {
			start := threadCPU()
			for i := 0; i < 5; i++ {
				tr.Evaluate(params, test)
			}
			beste = min(beste, (threadCPU()-start)/5)
		}
		t.Logf("%-8s train %8.2f tasks/s (cpu %v)   eval %8.0f samples/s", spec.Name, 1/best.Seconds(), best, 128/beste.Seconds())
	}
}
