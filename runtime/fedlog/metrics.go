package fedlog

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// Record is one line of the metrics file: the state of the job after a
// round (round 0 is the evaluation before training). Test fields are set
// only on rounds that were evaluated.
type Record struct {
	Round         int      `json:"round"`
	VirtualClock  float64  `json:"virtual_clock"`
	WallClock     float64  `json:"wall_clock"`
	Participants  int      `json:"participants"`
	Planned       int      `json:"planned,omitempty"`
	LearningRate  float64  `json:"learning_rate,omitempty"`
	Loss          *float64 `json:"loss,omitempty"`
	Top1          *float64 `json:"top_1,omitempty"`
	Top5          *float64 `json:"top_5,omitempty"`
	TestLoss      *float64 `json:"test_loss,omitempty"`
	ReissuedTasks int      `json:"reissued_tasks,omitempty"`
	// NonFinite records, by key ("loss", "test_loss"), a value that was
	// NaN or infinite ("NaN", "+Inf", "-Inf"): JSON has no number for it,
	// so its own field is left out and the line is still written.
	NonFinite map[string]string `json:"non_finite,omitempty"`
}

// Value returns &v for one of r's optional fields, or nil after noting
// v under key in NonFinite when v is NaN or infinite.
func (r *Record) Value(key string, v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		if r.NonFinite == nil {
			r.NonFinite = map[string]string{}
		}
		r.NonFinite[key] = strconv.FormatFloat(v, 'g', -1, 64)
		return nil
	}
	return &v
}

// Metrics appends Records as JSON lines to a file.
type Metrics struct {
	mu sync.Mutex
	f  *os.File
}

// OpenMetrics opens (appending) the metrics file at path.
func OpenMetrics(path string) (*Metrics, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("metrics folder: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("metrics file: %w", err)
	}
	return &Metrics{f: f}, nil
}

// Write appends one record.
func (m *Metrics) Write(r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("metrics record: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("metrics file %s: %w", m.f.Name(), err)
	}
	return nil
}

// Close closes the file.
func (m *Metrics) Close() error { return m.f.Close() }

// MaxMetricsLine bounds a line of the metrics file when it is read back:
// a record is a few hundred bytes.
const MaxMetricsLine = 64 << 10

// ScanMetrics reads metrics-file records from r (name for errors), which
// must come in increasing round order as the aggregator writes them, and
// calls each with every one; an error of each ends the scan with it. A
// last line without its newline is still being written: it is left out.
func ScanMetrics(r io.Reader, name string, each func(Record) error) error {
	br := bufio.NewReaderSize(r, MaxMetricsLine)
	last := -1
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("%s:%d: line over %d bytes", name, n, MaxMetricsLine)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		var rec Record
		if err := json.Unmarshal(line, &rec); err != nil {
			return fmt.Errorf("%s:%d: %w", name, n, err)
		}
		if n > 1 && rec.Round <= last {
			return fmt.Errorf("%s:%d: round %d after round %d", name, n, rec.Round, last)
		}
		last = rec.Round
		if err := each(rec); err != nil {
			return err
		}
	}
}
