// Package fedlog is how every tool of ours logs. It writes FedScale's log
// files in the original's paths and line format, so the scripts and habits
// of existing users keep working (Handler, a log/slog handler, with the
// runtime's printf-style Logger on it), and the machine-readable metrics
// file that sits beside them; Plain is the one-line handler of the
// command-line tools (fsbuild, launcher), which take a *slog.Logger.
//
// Line format (Python logging with datefmt '(%m-%d) %H:%M:%S'):
//
//	(11-25) 22:10:01 INFO     [aggregator.go:123] message
package fedlog

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
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

// Handler is a slog.Handler that writes FedScale-format lines to a set of
// writers: the message, then the record's attributes as key=value. Each
// line is written with a single Write call, so several processes
// appending to the same file (as executors on one host do) never
// interleave within a line. Handlers derived with WithAttrs and WithGroup
// share the writers, the level and the buffer.
type Handler struct {
	s *sink
	a attrs
}

// attrs is what WithAttrs and WithGroup add to a handler.
type attrs struct {
	prefix string // preformatted attributes of WithAttrs, with groups
	group  string // open group, as a key prefix ("g." per level)
}

func (x attrs) with(as []slog.Attr) attrs {
	var b strings.Builder
	b.WriteString(x.prefix)
	for _, a := range as {
		appendAttr(&b, x.group, a)
	}
	return attrs{prefix: b.String(), group: x.group}
}

func (x attrs) withGroup(name string) attrs {
	if name == "" {
		return x
	}
	return attrs{prefix: x.prefix, group: x.group + name + "."}
}

// text is the record's message, then every attribute as key=value.
func (x attrs) text(r slog.Record) string {
	var b strings.Builder
	b.WriteString(r.Message)
	b.WriteString(x.prefix)
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(&b, x.group, a)
		return true
	})
	return b.String()
}

type sink struct {
	mu  sync.Mutex
	out []io.Writer
	min slog.LevelVar
	// pending holds lines written before a file was attached, so the file
	// gets the whole story once the log folder is known.
	pending [][]byte
	buffer  bool
}

// NewHandler returns a handler writing to w at level Info and above.
func NewHandler(w io.Writer) *Handler {
	return &Handler{s: &sink{out: []io.Writer{w}}}
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.s.min.Level() }

// Handle implements slog.Handler.
func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	file, line := "?", 0
	if r.PC != 0 {
		f, _ := runtime.CallersFrames([]uintptr{r.PC}).Next()
		file, line = filepath.Base(f.File), f.Line
	}
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	b := FormatLine(t, levelOf(r.Level), file, line, h.a.text(r))
	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.out {
		_, _ = w.Write(b)
	}
	if s.buffer {
		s.pending = append(s.pending, b)
	}
	return nil
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler { return &Handler{s: h.s, a: h.a.with(as)} }

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{s: h.s, a: h.a.withGroup(name)}
}

// appendAttr writes " key=value", groups flattened into dotted keys.
func appendAttr(b *strings.Builder, group string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		g := group
		if a.Key != "" {
			g += a.Key + "."
		}
		for _, ga := range a.Value.Group() {
			appendAttr(b, g, ga)
		}
		return
	}
	b.WriteByte(' ')
	b.WriteString(group)
	b.WriteString(a.Key)
	b.WriteByte('=')
	v := a.Value.String()
	if v == "" || strings.ContainsAny(v, " \t\r\n\"=") {
		v = strconv.Quote(v)
	}
	b.WriteString(v)
}

// levelOf maps slog's levels onto Python logging's names.
func levelOf(l slog.Level) Level {
	switch {
	case l < slog.LevelInfo:
		return Debug
	case l < slog.LevelWarn:
		return Info
	case l < slog.LevelError:
		return Warning
	}
	return Error
}

// Logger is the runtime's logger: printf-style calls on a Handler, with
// the caller's file and line, and the *slog.Logger over the same handler
// for code that logs through slog.
type Logger struct {
	h  *Handler
	sl *slog.Logger
}

// New returns a logger writing to w (usually os.Stderr).
func New(w io.Writer) *Logger {
	h := NewHandler(w)
	return &Logger{h: h, sl: slog.New(h)}
}

// Slog is the logger as a *slog.Logger writing the same lines.
func (l *Logger) Slog() *slog.Logger { return l.sl }

// SetLevel sets the lowest level that is written.
func (l *Logger) SetLevel(min Level) { l.h.s.min.Set(min.slog()) }

// slog is levelOf's inverse.
func (l Level) slog() slog.Level {
	switch l {
	case Debug:
		return slog.LevelDebug
	case Info:
		return slog.LevelInfo
	case Warning:
		return slog.LevelWarn
	}
	return slog.LevelError
}

// Buffer keeps every line in memory until AttachFile, for processes that
// learn their log folder only after they start (executors learn the
// aggregator's time stamp when it welcomes them).
func (l *Logger) Buffer() { s := l.h.s; s.mu.Lock(); s.buffer = true; s.mu.Unlock() }

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
	s := l.h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, line := range s.pending {
		if _, err := f.Write(line); err != nil {
			f.Close()
			return nil, fmt.Errorf("log file %s: %w", path, err)
		}
	}
	s.pending, s.buffer = nil, false
	s.out = append(s.out, f)
	return f, nil
}

// Infof logs at INFO level.
func (l *Logger) Infof(format string, args ...any) { l.log(slog.LevelInfo, format, args...) }

// Warnf logs at WARNING level.
func (l *Logger) Warnf(format string, args ...any) { l.log(slog.LevelWarn, format, args...) }

// Errorf logs at ERROR level.
func (l *Logger) Errorf(format string, args ...any) { l.log(slog.LevelError, format, args...) }

// Debugf logs at DEBUG level.
func (l *Logger) Debugf(format string, args ...any) { l.log(slog.LevelDebug, format, args...) }

// log records the caller of Infof (and the others), as slog's own methods
// do for theirs.
func (l *Logger) log(level slog.Level, format string, args ...any) {
	if l == nil || !l.h.Enabled(context.Background(), level) {
		return
	}
	var pcs [1]uintptr
	runtime.Callers(3, pcs[:]) // runtime.Callers, log, Infof
	_ = l.h.Handle(context.Background(), slog.NewRecord(time.Now(), level, fmt.Sprintf(format, args...), pcs[0]))
}

// Plain is the handler of the command-line tools (fsbuild, launcher): each
// record is one line of its message and attributes (key=value), nothing
// else, written with one Write.
type Plain struct {
	w   io.Writer
	mu  *sync.Mutex
	min slog.Level
	a   attrs
}

// NewPlain returns a Plain handler writing records at min and above to w.
func NewPlain(w io.Writer, min slog.Level) *Plain { return &Plain{w: w, mu: &sync.Mutex{}, min: min} }

// Enabled implements slog.Handler.
func (p *Plain) Enabled(_ context.Context, l slog.Level) bool { return l >= p.min }

// Handle implements slog.Handler.
func (p *Plain) Handle(_ context.Context, r slog.Record) error {
	line := p.a.text(r) + "\n"
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err := io.WriteString(p.w, line)
	return err
}

// WithAttrs implements slog.Handler.
func (p *Plain) WithAttrs(as []slog.Attr) slog.Handler { q := *p; q.a = p.a.with(as); return &q }

// WithGroup implements slog.Handler.
func (p *Plain) WithGroup(name string) slog.Handler { q := *p; q.a = p.a.withGroup(name); return &q }

// Discard is a logger that writes nothing, for libraries given none.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

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

// RoundValues are what a RoundLine says.
type RoundValues struct {
	WallSeconds               int64 // whole seconds, as printed
	Round, Planned, Succeeded int
	Loss                      float64
}

// TestValues are what a TestLine says.
type TestValues struct {
	Round                   int
	Clock, Top1, Top5, Loss float64
}

// The lines' values, after any log prefix, up to the line's end. A float
// is what PyFloat writes (nan and inf included).
var (
	roundLineRE = regexp.MustCompile(`Wall clock: (\d{1,18}) s, round: (\d{1,9}), Planned participants: (\d{1,9}), Succeed participants: (\d{1,9}), Training loss: (\S+)$`)
	testLineRE  = regexp.MustCompile(`FL Testing in round: (\d{1,9}), virtual_clock: (\S+), results: \{'round': (\d{1,9}), 'clock': (\S+), 'top_1': (\S+), 'top_5': (\S+), 'loss': (\S+)\}$`)
)

// ParseRoundLine reads a log line holding a RoundLine (after the log
// prefix); ok is false for any other line.
func ParseRoundLine(line string) (v RoundValues, ok bool) {
	m := roundLineRE.FindStringSubmatch(strings.TrimRight(line, "\r\n"))
	if m == nil {
		return v, false
	}
	var err error
	var ints [3]int
	if v.WallSeconds, err = strconv.ParseInt(m[1], 10, 64); err != nil {
		return v, false
	}
	for i := range ints {
		if ints[i], err = strconv.Atoi(m[2+i]); err != nil {
			return v, false
		}
	}
	v.Round, v.Planned, v.Succeeded = ints[0], ints[1], ints[2]
	if v.Loss, err = strconv.ParseFloat(m[5], 64); err != nil {
		return v, false
	}
	return v, true
}

// ParseTestLine reads a log line holding a TestLine (after the log
// prefix); ok is false for any other line, or one whose two rounds or
// clocks differ.
func ParseTestLine(line string) (v TestValues, ok bool) {
	m := testLineRE.FindStringSubmatch(strings.TrimRight(line, "\r\n"))
	if m == nil || m[1] != m[3] || m[2] != m[4] {
		return v, false
	}
	var err error
	if v.Round, err = strconv.Atoi(m[1]); err != nil {
		return v, false
	}
	for _, f := range []struct {
		dst *float64
		s   string
	}{{&v.Clock, m[2]}, {&v.Top1, m[5]}, {&v.Top5, m[6]}, {&v.Loss, m[7]}} {
		// ParseFloat reads PyFloat's nan, inf and -inf too.
		if *f.dst, err = strconv.ParseFloat(f.s, 64); err != nil {
			return v, false
		}
	}
	return v, true
}
