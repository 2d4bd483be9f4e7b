package progress

import (
	"bytes"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fedscale/fedscale-go/runtime/health"
)

// Parse reads what the aggregator really serves: the series are made with
// the runtime's names and served by client_golang's own handler.
func TestParseAggregatorExposition(t *testing.T) {
	for _, tc := range []struct {
		name               string
		round, rounds, top float64
		wantRound          int
		wantRounds         int     // 0: none
		wantAcc            float64 // 0: none
	}{
		{"before the first evaluation", 3, 50, 0, 3, 50, 0},
		{"after an evaluation", 12, 50, 0.625, 12, 50, 0.625},
		{"an aggregator without the rounds", 12, 0, 0.625, 12, 0, 0.625},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			round := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: health.MetricsNamespace, Name: health.RoundMetric, Help: "r"})
			top := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: health.MetricsNamespace, Name: health.Top1Metric, Help: "t"})
			other := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: health.MetricsNamespace, Name: "tasks_issued_total", Help: "x"}, []string{"kind"})
			reg.MustRegister(round, top, other)
			if tc.rounds > 0 {
				rounds := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: health.MetricsNamespace, Name: health.RoundsMetric, Help: "n"})
				reg.MustRegister(rounds)
				rounds.Set(tc.rounds)
			}
			round.Set(tc.round)
			top.Set(tc.top)
			other.WithLabelValues("train").Add(7)
			rec := httptest.NewRecorder()
			promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			text := rec.Body.Bytes()
			p, err := Parse(bytes.NewReader(text))
			if err != nil {
				t.Fatal(err)
			}
			if p.Round == nil || *p.Round != tc.wantRound {
				t.Errorf("round = %v, want %d", p.Round, tc.wantRound)
			}
			if tc.wantRounds == 0 && p.Rounds != nil || tc.wantRounds != 0 && (p.Rounds == nil || *p.Rounds != tc.wantRounds) {
				t.Errorf("rounds = %v, want %d", p.Rounds, tc.wantRounds)
			}
			switch {
			case tc.wantAcc == 0 && p.Accuracy != nil:
				t.Errorf("accuracy = %v before any evaluation", *p.Accuracy)
			case tc.wantAcc != 0 && (p.Accuracy == nil || *p.Accuracy != tc.wantAcc):
				t.Errorf("accuracy = %v, want %v", p.Accuracy, tc.wantAcc)
			}
		})
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	for _, in := range []string{"fedscale_round{ 3\n", "fedscale_round 3 4 5 6\n"} {
		if _, err := Parse(strings.NewReader(in)); err == nil {
			t.Errorf("Parse(%q) accepted it", in)
		}
	}
	p, err := Parse(strings.NewReader("# nothing but a comment\n"))
	if err != nil || p.Round != nil || p.Accuracy != nil {
		t.Errorf("empty exposition: %+v, %v", p, err)
	}
}
