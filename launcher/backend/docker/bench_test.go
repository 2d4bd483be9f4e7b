package docker_test

import (
	"context"
	"testing"
	"time"

	"github.com/fedscale/fedscale-go/launcher/backend"
)

// BenchmarkSubmitRunning is a job's start as users wait for it: submit one
// aggregator and two executors, wait until all three run and answer
// /readyz, then stop.
func BenchmarkSubmitRunning(b *testing.B) {
	be := engine(b)
	j := newJob(b, be, 2, 100000)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var submit, ready, stop time.Duration
	for b.Loop() {
		t0 := time.Now()
		if err := be.Submit(ctx, j.spec); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		st, err := be.Wait(ctx, j.name, backend.UntilRunning)
		if err != nil {
			b.Fatal(err)
		}
		if st.Phase != backend.Running {
			b.Fatalf("phase %s", st.Phase)
		}
		t2 := time.Now()
		if err := be.Stop(ctx, j.name); err != nil {
			b.Fatal(err)
		}
		submit += t1.Sub(t0)
		ready += t2.Sub(t1)
		stop += time.Since(t2)
	}
	n := float64(b.N)
	b.ReportMetric(float64(submit.Milliseconds())/n, "submit-ms/op")
	b.ReportMetric(float64(ready.Milliseconds())/n, "ready-ms/op")
	b.ReportMetric(float64(stop.Milliseconds())/n, "stop-ms/op")
}
