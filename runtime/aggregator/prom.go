package aggregator

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fedscale/fedscale-go/runtime/health"
)

// promMetrics are the aggregator's Prometheus series, served on /metrics.
type promMetrics struct {
	round, rounds, executors, clients, top1, clock prometheus.Gauge
	roundsDone, reissued, rejected                 prometheus.Counter
	tasks                                          *prometheus.CounterVec
}

func newPromMetrics(reg prometheus.Registerer) *promMetrics {
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: health.MetricsNamespace, Name: name, Help: help})
	}
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: health.MetricsNamespace, Name: name, Help: help})
	}
	m := &promMetrics{
		round:      g(health.RoundMetric, "Current training round."),
		rounds:     g(health.RoundsMetric, "Rounds the job trains (job_conf.rounds)."),
		executors:  g("executors_connected", "Executors with a live session."),
		clients:    g("clients_eligible", "Registered clients that pass filter_less/filter_more."),
		top1:       g(health.Top1Metric, "Top-1 accuracy of the last evaluation."),
		clock:      g("virtual_clock_seconds", "Simulated time of the job."),
		roundsDone: c("rounds_completed_total", "Rounds aggregated."),
		reissued:   c("tasks_reissued_total", "Tasks re-issued after their executor was lost or failed them."),
		rejected:   c("results_rejected_total", "Late or duplicate results rejected."),
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: health.MetricsNamespace, Name: "tasks_issued_total",
			Help: "Tasks sent to executors."}, []string{"kind"}),
	}
	if reg != nil {
		reg.MustRegister(m.round, m.rounds, m.executors, m.clients, m.top1, m.clock, m.roundsDone, m.reissued, m.rejected, m.tasks)
	}
	return m
}
