package health

import (
	"context"
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

// TestInstance: every endpoint names the instance from InstanceEnv, and
// ProbeReady reads it back with the status; a process given none answers
// without the header, as before.
func TestInstance(t *testing.T) {
	for _, instance := range []string{"job-a/0123abcd", ""} {
		t.Setenv(InstanceEnv, instance)
		s, err := Listen("127.0.0.1:0", prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		base := "http://" + s.Addr()
		for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get(InstanceHeader); got != instance {
				t.Errorf("%s: %s = %q, want %q", path, InstanceHeader, got, instance)
			}
		}
		for _, ready := range []bool{false, true} {
			s.SetReady(ready, "starting")
			r, err := ProbeReady(context.Background(), http.DefaultClient, base)
			if err != nil {
				t.Fatal(err)
			}
			if r != (Readiness{Ready: ready, Instance: instance}) {
				t.Errorf("ProbeReady = %+v, want ready %v, instance %q", r, ready, instance)
			}
		}
		s.Close()
	}
	if _, err := ProbeReady(context.Background(), http.DefaultClient, "http://127.0.0.1:1"); err == nil {
		t.Error("ProbeReady of a closed port: no error")
	}
}

func TestOurs(t *testing.T) {
	for _, tc := range []struct {
		answered, want string
		ours           bool
	}{
		{"job-a/1", "job-a/1", true},
		{"job-a/1", "job-b/2", false},
		{"", "job-b/2", false}, // a process given no instance is not this job's
		{"job-a/1", "", true},  // a job recorded without one accepts any answer
		{"", "", true},
	} {
		if got := (Readiness{Ready: true, Instance: tc.answered}).Ours(tc.want); got != tc.ours {
			t.Errorf("answer %q, want %q: Ours = %v, want %v", tc.answered, tc.want, got, tc.ours)
		}
	}
}

// TestDeferred: a deferred route answers 503 with its reason until it is
// set, then hands requests on.
func TestDeferred(t *testing.T) {
	d := &Deferred{Reason: "reading the data set"}
	s, err := Listen("127.0.0.1:0", nil, Route{Pattern: "/api/v1/job", Handler: d})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	url := "http://" + s.Addr()
	for _, tc := range []struct {
		set      bool
		path     string
		code     int
		contains string
	}{
		{false, "/api/v1/job", 503, "not yet: reading the data set"},
		{false, "/healthz", 200, "ok"},
		{true, "/api/v1/job", 200, "the document"},
	} {
		if tc.set {
			d.Set(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "the document") }))
		}
		code, body := get(t, url+tc.path)
		if code != tc.code || !strings.Contains(body, tc.contains) {
			t.Errorf("%s (set=%v) = %d %q, want %d containing %q", tc.path, tc.set, code, body, tc.code, tc.contains)
		}
	}
}
