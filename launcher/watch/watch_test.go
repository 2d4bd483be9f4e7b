package watch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/runtime/fedlog"
	"github.com/fedscale/fedscale-go/runtime/jobapi"
)

func f64(v float64) *float64 { return &v }

func doc(state string, round, rounds int, eta *float64, top1 ...float64) *jobapi.Job {
	d := &jobapi.Job{APIVersion: jobapi.Version, Job: "femnist", State: state, Round: round, Rounds: rounds, ETASeconds: eta,
		ExecutorCounts: jobapi.ExecutorCounts{Total: 4, Connected: 1}}
	for i, v := range top1 {
		d.History = append(d.History, fedlog.Record{Round: 2 * (i + 1), Top1: f64(v)})
		d.History = append(d.History, fedlog.Record{Round: 2*(i+1) + 1}) // a round without evaluation
	}
	return d
}

func TestLine(t *testing.T) {
	for _, tc := range []struct {
		name  string
		s     Snapshot
		width int
		want  string
	}{
		{"before the document", Snapshot{Job: "femnist", Elapsed: 1500 * time.Millisecond}, 0,
			"job femnist: starting, elapsed 2s"},
		{"waiting for executors", Snapshot{Job: "femnist", Doc: doc(jobapi.StateWaiting, 0, 50, nil), Elapsed: 3 * time.Second}, 0,
			"job femnist: waiting for executors (1/4 connected), elapsed 3s"},
		{"no ETA before two rounds", Snapshot{Job: "femnist", Doc: doc(jobapi.StateTraining, 1, 50, nil), Elapsed: 4 * time.Second}, 0,
			"job femnist: round 1/50, elapsed 4s"},
		{"the last top-1 and the ETA run down since the fetch", Snapshot{Job: "femnist", Doc: doc(jobapi.StateTraining, 6, 50, f64(250), 0.5, 0.625),
			Elapsed: 62 * time.Second, Age: 10 * time.Second}, 0,
			"job femnist: round 6/50, top-1 62.50% (round 4), ETA 4m0s, elapsed 1m2s"},
		{"an ETA past due is 0", Snapshot{Job: "femnist", Doc: doc(jobapi.StateEvaluating, 50, 50, f64(1)), Age: 5 * time.Second}, 0,
			"job femnist: round 50/50, ETA 0s, elapsed 0s"},
		{"finished", Snapshot{Job: "femnist", Doc: doc(jobapi.StateFinished, 50, 50, nil, 0.8)}, 0,
			"job femnist: finished at round 50/50, top-1 80.00% (round 2), elapsed 0s"},
		{"narrow: the name goes first", Snapshot{Job: "femnist", Doc: doc(jobapi.StateTraining, 6, 50, f64(250), 0.625), Elapsed: 62 * time.Second}, 60,
			"round 6/50, top-1 62.50% (round 2), ETA 4m10s, elapsed 1m2s"},
		{"narrower: then the elapsed time", Snapshot{Job: "femnist", Doc: doc(jobapi.StateTraining, 6, 50, f64(250), 0.625), Elapsed: 62 * time.Second}, 45,
			"round 6/50, top-1 62.50% (round 2), ETA 4m10s"},
		{"narrowest: the round, cut", Snapshot{Job: "femnist", Doc: doc(jobapi.StateTraining, 6, 50, nil)}, 7,
			"round 6"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Line(tc.s, tc.width)
			if got != tc.want {
				t.Errorf("Line = %q\nwant   %q", got, tc.want)
			}
			if tc.width > 0 && len(got) > tc.width {
				t.Errorf("%d columns, over %d", len(got), tc.width)
			}
		})
	}
}

// A printer to anything but a terminal writes no control character: a
// plain line when what it shows changed, at most one every PlainEvery.
func TestPrinterPlain(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := NewPrinter(f)
	if p.Terminal() {
		t.Fatal("a file taken for a terminal")
	}
	t0 := time.Unix(1000, 0)
	for _, step := range []struct {
		at   time.Duration
		doc  *jobapi.Job
		want bool // a line written
	}{
		{0, nil, true},
		{time.Second, nil, false}, // only the elapsed time moved
		{2 * time.Second, doc(jobapi.StateTraining, 1, 9, nil), false}, // changed, but too soon
		{PlainEvery, doc(jobapi.StateTraining, 1, 9, nil), true},
		{PlainEvery + 5*time.Second, doc(jobapi.StateTraining, 2, 9, f64(30)), false},
		{2 * PlainEvery, doc(jobapi.StateTraining, 2, 9, f64(20)), true},
		{4 * PlainEvery, doc(jobapi.StateTraining, 2, 9, f64(1)), false}, // only the ETA moved
	} {
		before, _ := f.Seek(0, io.SeekCurrent)
		p.Show(t0.Add(step.at), Snapshot{Job: "femnist", Doc: step.doc, Elapsed: step.at})
		after, _ := f.Seek(0, io.SeekCurrent)
		if (after > before) != step.want {
			t.Errorf("at %v: wrote %d bytes, want a line: %v", step.at, after-before, step.want)
		}
	}
	fmt.Fprintln(p, "warning: executor-2 died")
	p.Clear()
	b, _ := os.ReadFile(f.Name())
	if bytes.ContainsAny(b, "\r\x1b\b") || strings.Count(string(b), "\n") != 4 || !strings.HasSuffix(string(b), "\nwarning: executor-2 died\n") {
		t.Errorf("plain output:\n%q", b)
	}
}

// On a real terminal (a pseudo-terminal) the line is rewritten in place,
// fits the terminal's width, and Clear leaves the cursor at the start of
// a blank line.
func TestPrinterTerminal(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 24, Cols: 40}); err != nil {
		t.Fatal(err)
	}
	out := make(chan []byte)
	go func() { b, _ := io.ReadAll(ptmx); out <- b }()
	p := NewPrinter(tty)
	if !p.Terminal() {
		t.Fatal("a pseudo-terminal not taken for a terminal")
	}
	t0 := time.Unix(1000, 0)
	p.Show(t0, Snapshot{Job: "femnist", Doc: doc(jobapi.StateTraining, 6, 50, f64(250), 0.625), Elapsed: time.Minute})
	p.Show(t0.Add(time.Second), Snapshot{Job: "fl", Doc: doc(jobapi.StateTraining, 7, 50, nil)})
	fmt.Fprintln(p, "warning: executor-2 died")
	p.Clear()
	tty.Close()
	var b []byte
	select {
	case b = <-out:
	case <-time.After(10 * time.Second):
		t.Fatal("the terminal's output did not end")
	}
	want := "\rround 6/50, top-1 62.50% (round 2)" + // 39 columns at most
		"\rjob fl: round 7/50, elapsed 0s" + "    " + // blanks the rest of the longer line
		"\r" + strings.Repeat(" ", 30) + "\r" + "warning: executor-2 died\r\n" + // a message: the line blanked,
		"\rjob fl: round 7/50, elapsed 0s" + // drawn again below it
		"\r" + strings.Repeat(" ", 30) + "\r"
	if string(b) != want {
		t.Errorf("terminal got\n%q\nwant\n%q", b, want)
	}
}

func TestFinalWrite(t *testing.T) {
	rec := func(round int, top1, top5, tloss, loss *float64) fedlog.Record {
		return fedlog.Record{Round: round, Top1: top1, Top5: top5, TestLoss: tloss, Loss: loss}
	}
	for _, tc := range []struct {
		name string
		f    Final
		want string
	}{
		{"figures and the file", Final{Job: "femnist", Phase: backend.Succeeded, Elapsed: 192 * time.Second, File: "/l/logs/femnist/1201_2300/aggregator/metrics.jsonl",
			Records: []fedlog.Record{rec(1, nil, nil, nil, f64(2)), rec(2, f64(0.8125), f64(0.95), f64(0.6312), f64(1.5))}},
			"job femnist: Succeeded after 3m12s, 2 rounds: top-1 81.25%, top-5 95.00%, test loss 0.6312, training loss 1.5\n" +
				"results: /l/logs/femnist/1201_2300/aggregator/metrics.jsonl (launcher results femnist)\n"},
		{"the last evaluation before the last round", Final{Job: "femnist", Phase: backend.Succeeded, Elapsed: time.Second,
			Records: []fedlog.Record{rec(2, f64(0.5), nil, nil, nil), rec(3, nil, nil, nil, f64(1))}},
			"job femnist: Succeeded after 1s, 3 rounds: top-1 50.00% (round 2), training loss 1\nresults: launcher results femnist\n"},
		{"not readable from here", Final{Job: "femnist", Phase: backend.Succeeded, Unreadable: `job "femnist": no metrics can be read from here: on its node`},
			"job femnist: Succeeded after 0s\nresults: job \"femnist\": no metrics can be read from here: on its node\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			tc.f.Write(&b)
			if b.String() != tc.want {
				t.Errorf("got\n%s\nwant\n%s", b.String(), tc.want)
			}
		})
	}
}

// A Watcher fetches before it first shows, keeps fetching until stopped
// (every Redraw until the first document) and returns the last document.
func TestWatcher(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	calls := make(chan int, 100)
	n := 0
	src := func(ctx context.Context) (*jobapi.Job, error) {
		n++
		calls <- n
		if n == 1 {
			return nil, errors.New("not up yet") // shown as starting; fetched again at the next redraw
		}
		return doc(jobapi.StateTraining, n, 9, nil), nil
	}
	w := Start(context.Background(), "femnist", src, NewPrinter(f), time.Now())
	for c := range calls {
		if c == 2 {
			break
		}
	}
	last := w.Stop()
	if last == nil || last.Round < 2 {
		t.Fatalf("last document %+v, want round 2 or later", last)
	}
	b, _ := os.ReadFile(f.Name())
	if got := string(b); got != "job femnist: starting, elapsed 0s\n" {
		t.Errorf("output %q: want the first line only (the next change comes within PlainEvery)", got)
	}
}
