// Package watch shows a job's progress while `launcher submit --wait`
// waits: one line (round N/M, the last top-1, the time elapsed, the ETA)
// read from the aggregator's job document (runtime/jobapi) through any
// backend that can read it (backend.MetricsReader), so every backend shows
// it through the same code; and, once the job has ended, its final figures
// and where its results are.
//
// On a terminal the line is rewritten in place (\r) every second. Anywhere
// else (a CI log, a file) no control character is written: a plain line
// when the round, the state or the top-1 changed, at most one every
// PlainEvery, then the final figures; a log reader sees the job move
// without a line per second.
package watch

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/runtime/jobapi"
)

// Intervals: the terminal line is redrawn every Redraw (the elapsed time
// moves), the document fetched at most every Fetch once it was read (on
// Kubernetes each fetch is a pod list and a service-proxy request), and a
// plain line written at most every PlainEvery.
const (
	Redraw     = time.Second
	Fetch      = 2 * time.Second
	PlainEvery = 10 * time.Second
	// fetchTimeout bounds one fetch: a slow one only delays the line.
	fetchTimeout = 10 * time.Second
)

// Snapshot is what the line shows. Doc is nil until the aggregator's job
// document was read.
type Snapshot struct {
	Job     string
	Doc     *jobapi.Job
	Elapsed time.Duration
	// Age is how long ago Doc was fetched: its ETA has run down by as much.
	Age time.Duration
}

// fields are the line's parts, most important first: round (or state),
// top-1, ETA, elapsed.
func fields(s Snapshot) []string {
	elapsed := "elapsed " + dur(s.Elapsed)
	d := s.Doc
	if d == nil {
		return []string{"starting", elapsed}
	}
	var out []string
	switch d.State {
	case jobapi.StateWaiting:
		out = append(out, fmt.Sprintf("waiting for executors (%d/%d connected)", d.ExecutorCounts.Connected, d.ExecutorCounts.Total))
	case jobapi.StateTraining, jobapi.StateEvaluating:
		out = append(out, fmt.Sprintf("round %d/%d", d.Round, d.Rounds))
	default:
		out = append(out, fmt.Sprintf("%s at round %d/%d", d.State, d.Round, d.Rounds))
	}
	if r, ok := lastEval(d); ok {
		out = append(out, fmt.Sprintf("top-1 %s (round %d)", pct(*r.Top1), r.Round))
	}
	if d.ETASeconds != nil {
		eta := time.Duration(*d.ETASeconds*float64(time.Second)) - s.Age
		out = append(out, "ETA "+dur(max(eta, 0)))
	}
	return append(out, elapsed)
}

// Line is s as one line of at most width columns (0: no limit): the
// job's name first, then the fields; when it does not fit, the name and
// then the least important fields are left out, and what still does not
// fit is cut.
func Line(s Snapshot, width int) string {
	f := fields(s)
	full := "job " + s.Job + ": " + strings.Join(f, ", ")
	if width <= 0 || len(full) <= width {
		return full
	}
	for n := len(f); n > 0; n-- {
		if l := strings.Join(f[:n], ", "); len(l) <= width {
			return l
		}
	}
	return f[0][:width]
}

// dur is d to the second.
func dur(d time.Duration) string { return d.Round(time.Second).String() }

// pct is an accuracy (0..1) as a percentage.
func pct(v float64) string { return fmt.Sprintf("%.2f%%", 100*v) }

// Printer writes the line to a terminal or a log. It is also an
// io.Writer for the launcher's other messages meanwhile (a warning that
// an executor died): on a terminal each blanks the line, is written, and
// the line is drawn again below it.
type Printer struct {
	w     io.Writer
	tty   bool
	width func() int

	mu sync.Mutex
	// tty: the line on screen and its columns, to draw it again and to
	// blank what a shorter line leaves of a longer one.
	line  string
	shown int
	// not a tty: the last plain line's fields that change and when it
	// was written.
	lastKey string
	lastAt  time.Time
}

// NewPrinter writes to w, rewriting the line in place when w is a
// terminal (golang.org/x/term: a file whose descriptor is one).
func NewPrinter(w io.Writer) *Printer {
	p := &Printer{w: w, width: func() int { return 0 }}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
		p.width = func() int {
			if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 1 {
				return cols - 1 // the last column wraps on some terminals
			}
			return 79
		}
	}
	return p
}

// Terminal says whether the line is rewritten in place.
func (p *Printer) Terminal() bool { return p.tty }

// Show writes s: in place on a terminal; else as a plain line when what
// it shows changed and PlainEvery has passed since the last one.
func (p *Printer) Show(now time.Time, s Snapshot) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		l := Line(s, p.width())
		pad := max(p.shown-len(l), 0)
		fmt.Fprint(p.w, "\r"+l+strings.Repeat(" ", pad))
		p.line, p.shown = l, len(l)
		return
	}
	f := fields(s)
	key := strings.Join(f[:len(f)-1], ", ") // all but the elapsed time
	if s.Doc != nil && s.Doc.ETASeconds != nil {
		key = strings.Join(f[:len(f)-2], ", ") // nor the ETA
	}
	if key == p.lastKey || (!p.lastAt.IsZero() && now.Sub(p.lastAt) < PlainEvery) {
		return
	}
	p.lastKey, p.lastAt = key, now
	fmt.Fprintln(p.w, Line(s, 0))
}

// Clear blanks the terminal line, so that what follows starts at its
// beginning; nothing elsewhere.
func (p *Printer) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blank()
	p.line = ""
}

// blank blanks the terminal line and leaves the cursor at its start.
func (p *Printer) blank() {
	if p.tty && p.shown > 0 {
		fmt.Fprint(p.w, "\r"+strings.Repeat(" ", p.shown)+"\r")
		p.shown = 0
	}
}

// Write writes a message (whole lines) between the line's redraws.
func (p *Printer) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blank()
	n, err := p.w.Write(b)
	if p.tty && p.line != "" {
		fmt.Fprint(p.w, "\r"+p.line)
		p.shown = len(p.line)
	}
	return n, err
}

// Source reads the job document; nil with no error while there is none
// (the aggregator is not running, or not reachable from here).
type Source func(ctx context.Context) (*jobapi.Job, error)

// FromBackend reads job name's document through b; nil when b cannot.
func FromBackend(b backend.Backend, name string) Source {
	mr, ok := b.(backend.MetricsReader)
	if !ok {
		return nil
	}
	return func(ctx context.Context) (*jobapi.Job, error) {
		src, err := mr.MetricsSource(ctx, name)
		return src.Document, err
	}
}

// Watcher follows a job until stopped and keeps the last document read.
type Watcher struct {
	job   string
	src   Source
	p     *Printer
	start time.Time

	stop context.CancelFunc
	done chan struct{}
	mu   sync.Mutex
	last *jobapi.Job
}

// Start follows job name through src (nil: only the elapsed time), from
// start (when the launcher began), writing to p until Stop.
func Start(ctx context.Context, name string, src Source, p *Printer, start time.Time) *Watcher {
	ctx, cancel := context.WithCancel(ctx)
	w := &Watcher{job: name, src: src, p: p, start: start, stop: cancel, done: make(chan struct{})}
	go w.run(ctx)
	return w
}

func (w *Watcher) run(ctx context.Context) {
	defer close(w.done)
	var doc *jobapi.Job
	var fetched time.Time
	t := time.NewTicker(Redraw)
	defer t.Stop()
	for {
		now := time.Now()
		// Every Redraw until the first document, then every Fetch.
		if w.src != nil && (doc == nil || now.Sub(fetched) >= Fetch) {
			fctx, cancel := context.WithTimeout(ctx, fetchTimeout)
			d, err := w.src(fctx)
			cancel()
			if ctx.Err() != nil {
				return
			}
			fetched = time.Now()
			if err == nil && d != nil {
				doc = d
				w.mu.Lock()
				w.last = d
				w.mu.Unlock()
			}
		}
		now = time.Now()
		w.p.Show(now, Snapshot{Job: w.job, Doc: doc, Elapsed: now.Sub(w.start), Age: now.Sub(fetched)})
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Stop ends the following, clears the terminal line and returns the last
// document read (nil: none).
func (w *Watcher) Stop() *jobapi.Job {
	w.stop()
	<-w.done
	w.p.Clear()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}
