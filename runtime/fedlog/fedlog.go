// Package fedlog writes FedScale's log files in the original's paths and line
// format, so the scripts and habits of existing users keep working, and the
// machine-readable metrics file that sits beside them.
//
// Line format (Python logging with datefmt '(%m-%d) %H:%M:%S'):
//
//	(11-25) 22:10:01 INFO     [aggregator.go:123] message
package fedlog

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Level is a log severity.
type Level int

// Levels, as Python's logging names them.
const (
	Debug Level = iota
	Info
	Warning
	Error
)

func (l Level) String() string {
	switch l {
	case Debug:
		return "DEBUG"
	case Info:
		return "INFO"
	case Warning:
		return "WARNING"
	default:
		return "ERROR"
	}
}

// Logger writes FedScale-format lines to a set of writers. Each line is
// written with a single Write call, so several processes appending to the
// same file (as executors on one host do) never interleave within a line.
type Logger struct {
	mu  sync.Mutex
	out []io.Writer
	min Level
	now func() time.Time
	// pending holds lines written before a file was attached, so the file
	// gets the whole story once the log folder is known.
	pending [][]byte
	buffer  bool
}

// New returns a logger writing to w (usually os.Stderr).
func New(w io.Writer) *Logger {
	return &Logger{out: []io.Writer{w}, min: Info, now: time.Now}
}

// SetLevel sets the lowest level that is written.
func (l *Logger) SetLevel(min Level) { l.mu.Lock(); l.min = min; l.mu.Unlock() }

// Buffer keeps every line in memory until AttachFile, for processes that
// learn their log folder only after they start (executors learn the
// aggregator's time stamp when it welcomes them).
func (l *Logger) Buffer() { l.mu.Lock(); l.buffer = true; l.mu.Unlock() }

// AttachFile opens path for appending (creating its folder) and adds it to
// the outputs, first writing the lines buffered so far.
func (l *Logger) AttachFile(path string) (io.Closer, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("log folder: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.pending {
		if _, err := f.Write(line); err != nil {
			f.Close()
			return nil, fmt.Errorf("log file %s: %w", path, err)
		}
	}
	l.pending, l.buffer = nil, false
	l.out = append(l.out, f)
	return f, nil
}

// Infof logs at INFO level.
func (l *Logger) Infof(format string, args ...any) { l.log(Info, 2, format, args...) }

// Warnf logs at WARNING level.
func (l *Logger) Warnf(format string, args ...any) { l.log(Warning, 2, format, args...) }

// Errorf logs at ERROR level.
func (l *Logger) Errorf(format string, args ...any) { l.log(Error, 2, format, args...) }

// Debugf logs at DEBUG level.
func (l *Logger) Debugf(format string, args ...any) { l.log(Debug, 2, format, args...) }

func (l *Logger) log(level Level, skip int, format string, args ...any) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if level < l.min {
		return
	}
	file, line := "?", 0
	if _, f, n, ok := runtime.Caller(skip); ok {
		file, line = filepath.Base(f), n
	}
	b := FormatLine(l.now(), level, file, line, fmt.Sprintf(format, args...))
	for _, w := range l.out {
		_, _ = w.Write(b)
	}
	if l.buffer {
		l.pending = append(l.pending, b)
	}
}

// FormatLine renders one log line, newline included.
func FormatLine(t time.Time, level Level, file string, line int, msg string) []byte {
	var sb strings.Builder
	sb.Grow(48 + len(msg))
	sb.WriteString(t.Format("(01-02) 15:04:05 "))
	fmt.Fprintf(&sb, "%-8s [%s:%d] ", level, file, line)
	sb.WriteString(strings.TrimRight(msg, "\n"))
	sb.WriteByte('\n')
	return []byte(sb.String())
}

// PyFloat formats x the way Python's repr does, which is what the original's
// result dicts contain: shortest round-trip digits, always a decimal point
// or exponent, scientific only below 1e-4 or from 1e16 up.
func PyFloat(x float64) string {
	switch {
	case math.IsNaN(x):
		return "nan"
	case math.IsInf(x, 1):
		return "inf"
	case math.IsInf(x, -1):
		return "-inf"
	}
	ax := math.Abs(x)
	if ax != 0 && (ax < 1e-4 || ax >= 1e16) {
		s := strconv.FormatFloat(x, 'e', -1, 64)
		// Go writes e-05 and e+16 like Python; only a missing mantissa
		// point differs, and Python omits it too (1e-05).
		return s
	}
	s := strconv.FormatFloat(x, 'f', -1, 64)
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}

// RoundLine is the per-round line the original prints after aggregation.
func RoundLine(wallSeconds float64, round, planned, succeeded int, loss float64) string {
	return fmt.Sprintf("Wall clock: %d s, round: %d, Planned participants: %d, Succeed participants: %d, Training loss: %s",
		int64(math.Round(wallSeconds)), round, planned, succeeded, PyFloat(loss))
}

// TestLine is the per-evaluation line the original prints.
func TestLine(round int, clock, top1, top5, loss float64) string {
	c := PyFloat(clock)
	return fmt.Sprintf("FL Testing in round: %d, virtual_clock: %s, results: {'round': %d, 'clock': %s, 'top_1': %s, 'top_5': %s, 'loss': %s}",
		round, c, round, c, PyFloat(top1), PyFloat(top5), PyFloat(loss))
}
