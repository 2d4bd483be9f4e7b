package aggregator_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/fedscale/fedscale-go/runtime/config"
	"github.com/fedscale/fedscale-go/runtime/data"
	"github.com/fedscale/fedscale-go/runtime/executor"
	"github.com/fedscale/fedscale-go/runtime/fedlog"
	"github.com/fedscale/fedscale-go/runtime/jobtest"
	"github.com/fedscale/fedscale-go/runtime/model/cpu"
)

// BenchmarkTaskOverhead measures what the protocol and the round logic cost
// per client task: a 4x4-pixel logistic model trained for one step of one
// sample, so nearly all the time is scheduling, gRPC and aggregation.
// One op is one task; 2 executors on loopback.
func BenchmarkTaskOverhead(b *testing.B) {
	dir := b.TempDir()
	if err := jobtest.WriteSynthetic(dir, jobtest.SynthOptions{Clients: 50, PerClient: 2, Test: 10, Classes: 2, Size: 4, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	ds, err := data.Load(dir, "")
	if err != nil {
		b.Fatal(err)
	}
	c := config.Default()
	c.JobName, c.LogPath, c.TimeStamp, c.DataDir = "overhead", b.TempDir(), "b", dir
	c.Model, c.UseCuda = "logistic", false
	c.NumParticipants, c.Overcommitment = 10, 1
	c.LocalSteps, c.BatchSize, c.FilterLess, c.TestBsz = 1, 1, 1, 10
	c.Rounds = max(1, b.N/c.NumParticipants)
	c.EvalInterval = c.Rounds
	j := startAggregatorB(b, c, 2)
	var errs []<-chan error
	for r := 1; r <= 2; r++ {
		ex, err := executor.New(executor.Options{Conf: j.conf, Rank: r, Backend: cpu.New, Data: ds, Log: fedlog.New(discard{}), ConnectTimeout: 10 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		e := make(chan error, 1)
		go func() { e <- ex.Run(context.Background()) }()
		errs = append(errs, e)
	}
	b.ResetTimer()
	<-j.done
	b.StopTimer()
	if j.err != nil {
		b.Fatal(j.err)
	}
	for _, e := range errs {
		if err := <-e; err != nil {
			b.Fatal(err)
		}
	}
	tasks := c.Rounds * c.NumParticipants
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(tasks), "ms/task")
	os.RemoveAll(c.LogPath)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
