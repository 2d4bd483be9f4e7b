package e2e

import (
	"testing"
	"time"
)

// BenchmarkWholeJob times the full job (1 aggregator + 2 executors, 5
// rounds) from the start of testcontainers (creating the network) to the
// first aggregated round and to the exit of every container, images
// already built; each job is removed before the next starts.
//
//	go test -run '^$' -bench WholeJob -benchtime 5x ./e2e/
func BenchmarkWholeJob(b *testing.B) {
	s := need(b)
	var ready, first, whole time.Duration
	for i := 0; i < b.N; i++ {
		c := smallJob(s.jobName("bench"))
		ctx := ctxFor(b, 4*time.Minute)
		j, tm, codes := runWholeJob(ctx, b, s, c)
		for name, code := range codes {
			if code != 0 {
				b.Fatalf("%s exited with code %d", name, code)
			}
		}
		b.StopTimer()
		j.close()
		b.StartTimer()
		ready += tm.ready
		first += tm.firstRound
		whole += tm.done
		b.Logf("%s: %s", c.name, tm)
	}
	n := float64(b.N)
	b.ReportMetric(ready.Seconds()/n, "s-ready/op")
	b.ReportMetric(first.Seconds()/n, "s-first-round/op")
	b.ReportMetric(whole.Seconds()/n, "s-whole-job/op")
}
