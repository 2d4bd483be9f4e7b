// Package progress reads how far a running or finished job has got: the
// round and the last top-1 accuracy, from the aggregator's Prometheus
// endpoint while it runs, or from its metrics.jsonl once it has exited.
package progress

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/fedscale/fedscale-go/runtime/fedlog"
	"github.com/fedscale/fedscale-go/runtime/health"
)

// Progress is what status shows. Nil fields were not available.
type Progress struct {
	Round    *int
	Rounds   *int // job_conf.rounds, where the aggregator serves it
	Accuracy *float64
}

// Scrape reads the aggregator's /metrics at base (http://host:port).
func Scrape(ctx context.Context, base string) (Progress, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/metrics", nil)
	if err != nil {
		return Progress{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Progress{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Progress{}, fmt.Errorf("%s/metrics: %s", base, resp.Status)
	}
	return Parse(resp.Body)
}

// Parse reads the round and the last top-1 accuracy from a Prometheus text
// exposition of the aggregator's metrics.
func Parse(r io.Reader) (Progress, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return Progress{}, fmt.Errorf("aggregator metrics: %w", err)
	}
	var p Progress
	if v, ok := gauge(families, health.RoundMetric); ok && v >= 0 && v <= math.MaxInt32 {
		r := int(v)
		p.Round = &r
	}
	if v, ok := gauge(families, health.RoundsMetric); ok && v >= 1 && v <= math.MaxInt32 {
		r := int(v)
		p.Rounds = &r
	}
	if v, ok := gauge(families, health.Top1Metric); ok && v > 0 { // 0 until the first evaluation
		p.Accuracy = &v
	}
	return p, nil
}

// gauge is the value of the aggregator's unlabelled gauge name.
func gauge(families map[string]*dto.MetricFamily, name string) (float64, bool) {
	f := families[health.MetricName(name)]
	if f == nil || len(f.GetMetric()) != 1 || f.GetMetric()[0].GetGauge() == nil {
		return 0, false
	}
	return f.GetMetric()[0].GetGauge().GetValue(), true
}

// FromLogs reads the newest metrics.jsonl under jobLogDir
// ({log_path}/logs/{job_name}: one folder per aggregator start).
func FromLogs(jobLogDir string) (Progress, error) {
	files, err := filepath.Glob(filepath.Join(jobLogDir, "*", "aggregator", "metrics.jsonl"))
	if err != nil {
		return Progress{}, err
	}
	files2, _ := filepath.Glob(filepath.Join(jobLogDir, "*", "metrics.jsonl"))
	files = append(files, files2...)
	if len(files) == 0 {
		return Progress{}, fmt.Errorf("no metrics.jsonl under %s", jobLogDir)
	}
	sort.Strings(files) // time-stamp folders sort by time
	f, err := os.Open(files[len(files)-1])
	if err != nil {
		return Progress{}, err
	}
	defer f.Close()
	var p Progress
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var r fedlog.Record
		if json.Unmarshal(sc.Bytes(), &r) != nil {
			continue // a line being written
		}
		round := r.Round
		p.Round = &round
		if r.Top1 != nil {
			acc := *r.Top1
			p.Accuracy = &acc
		}
	}
	return p, sc.Err()
}
