package dashboard_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fedscale/fedscale-go/runtime/jobapi"
	"github.com/fedscale/fedscale-go/runtime/jobtest"
	"github.com/fedscale/fedscale-go/runtime/model/cpu"
)

// BenchmarkRoundsUnderPolling runs a real job (an aggregator and two
// executors in this process, the real CPU trainer) with no client and
// with 100 clients that each fetch the page (/) and the whole job document
// once a second, and reports the wall time per round both ways: the page
// and the document must not slow a round measurably. Run it with
//
//	go test ./runtime/dashboard/ -run '^$' -bench RoundsUnderPolling -benchtime 1x
//
// Each iteration is a whole job of loadRounds rounds.
func BenchmarkRoundsUnderPolling(b *testing.B) {
	for _, pollers := range []int{0, 100} {
		b.Run(fmt.Sprintf("pollers=%d", pollers), func(b *testing.B) {
			var rounds, requests, failed atomic.Int64
			var wall time.Duration
			for range b.N {
				d, n, r, f := runPolledJob(b, pollers)
				wall += d
				rounds.Add(int64(n))
				requests.Add(r)
				failed.Add(f)
			}
			b.ReportMetric(float64(wall.Milliseconds())/float64(rounds.Load()), "ms/round")
			b.ReportMetric(float64(requests.Load())/wall.Seconds(), "requests/s")
			if failed.Load() > 0 {
				b.Errorf("%d of %d requests failed", failed.Load(), requests.Load())
			}
		})
	}
}

// loadRounds is the benchmark job's length: long enough for its history
// (what the document carries) to reach its bound (jobapi.MaxHistory) and
// for the pollers to run a while.
const loadRounds = 2000

// runPolledJob runs one job under pollers clients and returns the wall
// time from its first round's start to its end, the rounds, and the
// requests made and failed.
func runPolledJob(b *testing.B, pollers int) (time.Duration, int, int64, int64) {
	b.Helper()
	b.StopTimer()
	c, ds := jobData(b, b.TempDir(), "load", jobtest.SynthOptions{Clients: 20, PerClient: 60, Test: 200, Classes: 4, Seed: 5})
	c.NumParticipants, c.Rounds, c.EvalInterval, c.LocalSteps, c.BatchSize = 4, loadRounds, 5, 5, 20
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	a := startAggr(b, ctx, c, 2, "127.0.0.1:0", "127.0.0.1:0")
	base := "http://" + a.hs.Addr()

	var requests, failed atomic.Int64
	pollCtx, stopPolling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	tr := &http.Transport{MaxIdleConnsPerHost: pollers + 1}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	get := func(path string) {
		requests.Add(1)
		resp, err := client.Get(base + path)
		if err != nil {
			if pollCtx.Err() == nil {
				failed.Add(1)
			}
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			failed.Add(1)
		}
	}
	for range pollers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread over the second, as independent browsers would be.
			select {
			case <-pollCtx.Done():
				return
			case <-time.After(time.Duration(rand.Int64N(int64(time.Second)))):
			}
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				get("/")
				get(jobapi.Path)
				select {
				case <-pollCtx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	defer func() { stopPolling(); wg.Wait() }()

	b.StartTimer()
	start := time.Now()
	var execs []<-chan error
	for rank := 1; rank <= 2; rank++ {
		execs = append(execs, startExecutor(b, ctx, a.c, ds, rank, cpu.New))
	}
	<-a.done
	wall := time.Since(start)
	b.StopTimer()
	if a.err != nil {
		b.Fatalf("job: %v", a.err)
	}
	for _, e := range execs {
		if err := <-e; err != nil {
			b.Errorf("executor: %v", err)
		}
	}
	return wall, loadRounds, requests.Load(), failed.Load()
}
