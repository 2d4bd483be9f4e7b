package k8s

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fedscale/fedscale-go/launcher/backend"
)

// BenchmarkSubmit100 submits a job of 100 executors with use_cuda to the
// test cluster (kwok GPU nodes, added as needed) and waits until every pod
// runs. It reports seconds from submit to Running and the API requests
// Wait made (followed by watch: a constant, not a function of the pods or
// the time). Stop is outside the timed part.
//
//	go test ./launcher/backend/k8s -run '^$' -bench Submit100 -benchtime 3x
func BenchmarkSubmit100(b *testing.B) {
	kb, cs := kube(b, testNamespace)
	ensureGPUs(b, cs, 100)
	var secs float64
	var reqs, submitReqs int64
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("bench-100-%d", i)
		s := testSpec(b, jobParams{name: name, executors: 100, cuda: true})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		start := time.Now()
		r0 := kb.Requests()
		if err := kb.Submit(ctx, s); err != nil {
			cancel()
			b.Fatal(err)
		}
		r1 := kb.Requests()
		st, err := kb.Wait(ctx, name, backend.UntilRunning)
		if err != nil {
			cancel()
			b.Fatalf("wait: %v", err)
		}
		secs += time.Since(start).Seconds()
		submitReqs += r1 - r0
		reqs += kb.Requests() - r1
		if len(st.Processes) != 101 {
			b.Fatalf("%d processes", len(st.Processes))
		}
		b.StopTimer()
		if err := kb.Stop(ctx, name); err != nil {
			b.Fatal(err)
		}
		cancel()
		b.StartTimer()
	}
	n := float64(b.N)
	b.ReportMetric(secs/n, "s-to-running/op")
	b.ReportMetric(float64(submitReqs)/n, "submit-requests/op")
	b.ReportMetric(float64(reqs)/n, "wait-requests/op")
}
