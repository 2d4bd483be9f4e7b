package main

import (
	"bytes"
	"container/heap"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// maxHistory bounds the bytes of log history held at once to merge or tail
// it; more is an error that says how to select less.
const maxHistory = 256 << 20

// fedlogStamp is the time at the start of a FedScale log line, as
// runtime/fedlog.FormatLine writes it: no year, no zone (the writer's local
// time), whole seconds. TestFedlogStamp holds the two together.
const fedlogStamp = "(01-02) 15:04:05"

// logLine is one line of a process's output.
type logLine struct {
	proc  string
	text  string    // the line without its prefix and the backend's time stamp, newline included
	stamp string    // the backend's time stamp as it gave it, "" when none
	t     time.Time // the backend's stamp, else the FedScale line's time, else the previous line's; zero when none
	exact bool      // t is the backend's stamp (nanoseconds), not a FedScale line's (seconds)
}

// lineParser turns the bytes a backend's Logs writes (asked for time
// stamps) into logLines. With every process, lines start "[name] ".
type lineParser struct {
	single string // the one process asked for, "" with every process
	now    time.Time
	last   map[string]time.Time // each process's last time, for lines without one
}

func newLineParser(single string, now time.Time) *lineParser {
	return &lineParser{single: single, now: now, last: map[string]time.Time{}}
}

func (p *lineParser) parse(raw string) logLine {
	l := logLine{proc: p.single, text: raw}
	if p.single == "" && strings.HasPrefix(raw, "[") {
		if i := strings.Index(raw, "] "); i > 0 {
			l.proc, l.text = raw[1:i], raw[i+2:]
		}
	}
	if i := strings.IndexByte(l.text, ' '); i > 0 {
		if t, err := time.Parse(time.RFC3339Nano, l.text[:i]); err == nil {
			l.stamp, l.t, l.exact, l.text = l.text[:i], t, true, l.text[i+1:]
		}
	}
	if l.t.IsZero() {
		l.t = p.fedlogTime(l.text)
	}
	if l.t.IsZero() {
		l.t = p.last[l.proc] // a line of a multi-line message, a panic's trace
	} else {
		p.last[l.proc] = l.t
	}
	return l
}

// fedlogTime is the time of a FedScale log line, in the year that puts it
// nearest to now (lines carry no year); zero for other lines.
func (p *lineParser) fedlogTime(text string) time.Time {
	if len(text) < len(fedlogStamp) {
		return time.Time{}
	}
	t, err := time.ParseInLocation(fedlogStamp, text[:len(fedlogStamp)], p.now.Location())
	if err != nil {
		return time.Time{}
	}
	var best time.Time
	for y := p.now.Year() - 1; y <= p.now.Year()+1; y++ {
		c := time.Date(y, t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, t.Location())
		if best.IsZero() || c.Sub(p.now).Abs() < best.Sub(p.now).Abs() {
			best = c
		}
	}
	return best
}

// format is the line as logs prints it.
func (l logLine) format(prefix, timestamps bool) string {
	var b strings.Builder
	if prefix {
		b.WriteString("[" + l.proc + "] ")
	}
	if timestamps {
		switch {
		case l.stamp != "":
			b.WriteString(l.stamp + " ")
		case !l.t.IsZero():
			b.WriteString(l.t.Format(time.RFC3339) + " ")
		}
	}
	b.WriteString(l.text)
	return b.String()
}

// lineWriter is the io.Writer a backend's Logs writes to: it hands each
// complete line to emit (a last partial line on close).
type lineWriter struct {
	mu   sync.Mutex
	buf  []byte
	emit func(raw string) error
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := string(w.buf[:i+1])
		w.buf = w.buf[i+1:]
		if err := w.emit(line); err != nil {
			return 0, err
		}
	}
	if len(w.buf) > maxHistory {
		return 0, fmt.Errorf("a log line longer than %d MiB", maxHistory>>20)
	}
	return len(b), nil
}

func (w *lineWriter) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) == 0 {
		return nil
	}
	line := string(w.buf) + "\n"
	w.buf = nil
	return w.emit(line)
}

// history collects each process's lines, the last tail of them (tail < 0:
// all) recorded at or after since, in at most maxHistory bytes.
type history struct {
	tail  int
	since time.Time
	order []string             // processes in the order their first line came
	lines map[string][]logLine // kept lines, oldest first
	recv  map[string]int       // lines received, kept or not
	last  map[string]logLine   // the last line received
	size  int                  // bytes kept
}

func newHistory(tail int, since time.Time) *history {
	return &history{tail: tail, since: since, lines: map[string][]logLine{}, recv: map[string]int{}, last: map[string]logLine{}}
}

// errTooMuch says how to ask for less.
var errTooMuch = fmt.Errorf("the job's log history is over %d MiB: select less with --tail, --since or --component", maxHistory>>20)

func (h *history) add(l logLine) error {
	if _, ok := h.recv[l.proc]; !ok {
		h.order = append(h.order, l.proc)
	}
	h.recv[l.proc]++
	h.last[l.proc] = l
	if !h.since.IsZero() && !l.t.IsZero() && l.t.Before(h.since) {
		return nil
	}
	if h.tail == 0 {
		return nil
	}
	ls := append(h.lines[l.proc], l)
	h.size += len(l.text) + len(l.stamp)
	if h.tail > 0 && len(ls) > h.tail {
		h.size -= len(ls[0].text) + len(ls[0].stamp)
		ls = ls[1:]
	}
	h.lines[l.proc] = ls
	if h.size > maxHistory {
		return errTooMuch
	}
	return nil
}

// merged is every kept line in time order; each process's lines keep
// their own order (a line never passes an earlier one of its process), and
// lines of one time keep the order their processes first appeared in.
func (h *history) merged() []logLine {
	q := &mergeQueue{}
	for i, p := range h.order {
		if len(h.lines[p]) > 0 {
			q.heads = append(q.heads, mergeHead{lines: h.lines[p], rank: i})
		}
	}
	heap.Init(q)
	var out []logLine
	for q.Len() > 0 {
		hd := &q.heads[0]
		out = append(out, hd.lines[0])
		if hd.lines = hd.lines[1:]; len(hd.lines) == 0 {
			heap.Pop(q)
		} else {
			heap.Fix(q, 0)
		}
	}
	return out
}

type mergeHead struct {
	lines []logLine
	rank  int
}

// mergeQueue is a heap of processes by the time of their next line.
type mergeQueue struct{ heads []mergeHead }

func (q *mergeQueue) Len() int { return len(q.heads) }
func (q *mergeQueue) Less(i, j int) bool {
	a, b := q.heads[i], q.heads[j]
	if !a.lines[0].t.Equal(b.lines[0].t) {
		return a.lines[0].t.Before(b.lines[0].t)
	}
	return a.rank < b.rank
}
func (q *mergeQueue) Swap(i, j int) { q.heads[i], q.heads[j] = q.heads[j], q.heads[i] }
func (q *mergeQueue) Push(x any)    { q.heads = append(q.heads, x.(mergeHead)) }
func (q *mergeQueue) Pop() any {
	x := q.heads[len(q.heads)-1]
	q.heads = q.heads[:len(q.heads)-1]
	return x
}

// printLines writes lines to w as logs prints them.
func printLines(w io.Writer, lines []logLine, prefix, timestamps bool) error {
	for _, l := range lines {
		if _, err := io.WriteString(w, l.format(prefix, timestamps)); err != nil {
			return err
		}
	}
	return nil
}
