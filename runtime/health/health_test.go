package health

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "fedscale_round", Help: "h"})
	reg.MustRegister(g)
	g.Set(3)
	s, err := Listen("127.0.0.1:0", reg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := "http://" + s.Addr()
	for _, tc := range []struct {
		ready    bool
		path     string
		code     int
		contains string
	}{
		{false, "/healthz", 200, "ok"},
		{false, "/readyz", 503, "not ready: starting"},
		{true, "/readyz", 200, "ready"},
		{true, "/metrics", 200, "fedscale_round 3"},
	} {
		s.SetReady(tc.ready, "starting")
		code, body := get(t, base+tc.path)
		if code != tc.code || !strings.Contains(body, tc.contains) {
			t.Errorf("%s (ready=%v) = %d %q, want %d containing %q", tc.path, tc.ready, code, body, tc.code, tc.contains)
		}
	}
	noMetrics, err := Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer noMetrics.Close()
	if code, _ := get(t, "http://"+noMetrics.Addr()+"/metrics"); code != 404 {
		t.Errorf("/metrics without a registry = %d, want 404", code)
	}
}
