package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/runtime/fedlog"
)

// recorded is one line a backend holds for a process.
type recorded struct {
	proc string
	t    time.Time
	text string
	live bool // written only while following
}

// cannedLogs writes a backend's Logs output the way each backend does:
// Docker and Kubernetes ("stamps") prefix the time they recorded when
// asked and select by Tail and Since; the local backend has no stamps,
// ignores both, and gives each process's output from its beginning.
type cannedLogs struct {
	backend.Backend // only Logs is called
	lines           []recorded
	stamps          bool
}

func (c *cannedLogs) Logs(_ context.Context, _ string, o backend.LogOptions, w io.Writer) error {
	var procs []string
	by := map[string][]recorded{}
	for _, l := range c.lines {
		if o.Process != "" && l.proc != o.Process || l.live && !o.Follow {
			continue
		}
		if c.stamps && !o.Since.IsZero() && l.t.Before(o.Since) {
			continue
		}
		if _, ok := by[l.proc]; !ok {
			procs = append(procs, l.proc)
		}
		by[l.proc] = append(by[l.proc], l)
	}
	for _, p := range procs { // one process after the other, as without --follow
		ls := by[p]
		if c.stamps && o.Tail > 0 && len(ls) > o.Tail {
			ls = ls[len(ls)-o.Tail:]
		}
		for _, l := range ls {
			line := l.text + "\n"
			if c.stamps && o.Timestamps {
				line = l.t.UTC().Format(time.RFC3339Nano) + " " + line
			}
			if o.Process == "" {
				line = "[" + p + "] " + line
			}
			io.WriteString(w, line)
		}
	}
	return nil
}

var t0 = time.Date(2026, 11, 25, 22, 31, 48, 0, time.Local)

// fedLine is a line as the runtime logs it at t.
func fedLine(t time.Time, msg string) string {
	return strings.TrimSuffix(string(fedlog.FormatLine(t, fedlog.Info, "x.go", 1, msg)), "\n")
}

// jobLines: the aggregator and two executors, interleaved in time; the
// aggregator's second message has a continuation line without a time.
func jobLines() []recorded {
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	return []recorded{
		{"aggregator", at(0), fedLine(at(0), "agg start"), false},
		{"aggregator", at(2500), fedLine(at(2500), "round 1"), false},
		{"aggregator", at(2500), "  continued", false},
		{"aggregator", at(6000), fedLine(at(6000), "agg live"), true},
		{"executor-1", at(1000), fedLine(at(1000), "e1 start"), false},
		{"executor-1", at(3000), fedLine(at(3000), "e1 trained"), false},
		{"executor-1", at(7000), fedLine(at(7000), "e1 live"), true},
		{"executor-2", at(1500), fedLine(at(1500), "e2 start"), false},
		{"executor-2", at(5000), fedLine(at(5000), "e2 trained"), false},
	}
}

func TestShowLogs(t *testing.T) {
	now := t0.Add(time.Hour)
	for _, tc := range []struct {
		name   string
		stamps bool
		r      logRequest
		want   []string // message order; "#" starts a line's expected stamp check
	}{
		{"merged by the backend's times", true, logRequest{tail: -1},
			[]string{"[aggregator] agg start", "[executor-1] e1 start", "[executor-2] e2 start", "[aggregator] round 1", "[aggregator]   continued", "[executor-1] e1 trained", "[executor-2] e2 trained"}},
		{"merged by FedScale times (local)", false, logRequest{tail: -1},
			[]string{"[aggregator] agg start", "[executor-1] e1 start", "[executor-2] e2 start", "[aggregator] round 1", "[aggregator]   continued", "[executor-1] e1 trained", "[executor-2] e2 trained"}},
		{"tail of each process", true, logRequest{tail: 1},
			[]string{"[aggregator]   continued", "[executor-1] e1 trained", "[executor-2] e2 trained"}},
		{"tail, local", false, logRequest{tail: 1},
			[]string{"[aggregator]   continued", "[executor-1] e1 trained", "[executor-2] e2 trained"}},
		{"tail 0", true, logRequest{tail: 0}, nil},
		{"since", true, logRequest{tail: -1, since: t0.Add(2 * time.Second)},
			[]string{"[aggregator] round 1", "[aggregator]   continued", "[executor-1] e1 trained", "[executor-2] e2 trained"}},
		{"since, local", false, logRequest{tail: -1, since: t0.Add(2 * time.Second)},
			[]string{"[aggregator] round 1", "[aggregator]   continued", "[executor-1] e1 trained", "[executor-2] e2 trained"}},
		{"one process streams", true, logRequest{process: "executor-2", tail: -1}, []string{"e2 start", "e2 trained"}},
		{"follow, stamped", true, logRequest{tail: 1, follow: true},
			[]string{"[aggregator]   continued", "[executor-1] e1 trained", "[executor-2] e2 trained", "[aggregator] agg live", "[executor-1] e1 live"}},
		{"follow, local", false, logRequest{tail: 1, follow: true},
			[]string{"[aggregator]   continued", "[executor-1] e1 trained", "[executor-2] e2 trained", "[aggregator] agg live", "[executor-1] e1 live"}},
		{"follow one process, local", false, logRequest{process: "executor-1", tail: -1, follow: true},
			[]string{"e1 start", "e1 trained", "e1 live"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.r.now = now
			var out bytes.Buffer
			b := &cannedLogs{lines: jobLines(), stamps: tc.stamps}
			if err := showLogs(context.Background(), b, "job", tc.r, &out); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
				if l == "" {
					continue
				}
				// Drop the FedScale stamp and source: the message is enough.
				if i := strings.Index(l, "[x.go:1] "); i >= 0 {
					l = l[:strings.Index(l, "(")] + l[i+len("[x.go:1] "):]
				}
				got = append(got, l)
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestTimestamps: --timestamps prints the backend's stamp as it gave it,
// else the FedScale line's time; without it, lines are as written.
func TestTimestamps(t *testing.T) {
	for _, tc := range []struct {
		stamps     bool
		timestamps bool
		want       string
	}{
		{true, true, "[aggregator] " + t0.UTC().Format(time.RFC3339Nano) + " " + fedLine(t0, "agg start")},
		{false, true, "[aggregator] " + t0.Format(time.RFC3339) + " " + fedLine(t0, "agg start")},
		{true, false, "[aggregator] " + fedLine(t0, "agg start")},
	} {
		var out bytes.Buffer
		b := &cannedLogs{lines: jobLines()[:1], stamps: tc.stamps}
		if err := showLogs(context.Background(), b, "job", logRequest{tail: -1, timestamps: tc.timestamps, now: t0}, &out); err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSuffix(out.String(), "\n"); got != tc.want {
			t.Errorf("stamps %v, --timestamps %v:\n got %s\nwant %s", tc.stamps, tc.timestamps, got, tc.want)
		}
	}
}

// TestFedlogStamp: the layout read here is the one runtime/fedlog writes,
// and a line without a year gets the year that is not in the future.
func TestFedlogStamp(t *testing.T) {
	for _, tc := range []struct {
		line time.Time
		now  time.Time
	}{
		{t0, t0.Add(time.Minute)},
		{time.Date(2025, 12, 31, 23, 59, 59, 0, time.Local), time.Date(2026, 1, 1, 0, 0, 10, 0, time.Local)},
		{time.Date(2026, 1, 1, 0, 0, 5, 0, time.Local), time.Date(2025, 12, 31, 23, 59, 0, 0, time.Local)}, // a clock a little behind
	} {
		p := newLineParser("aggregator", tc.now)
		if got := p.parse(fedLine(tc.line, "m") + "\n").t; !got.Equal(tc.line) {
			t.Errorf("line at %v read at %v: got %v", tc.line, tc.now, got)
		}
	}
	if got := newLineParser("a", t0).parse("not a log line\n").t; !got.IsZero() {
		t.Errorf("a line without a time got %v", got)
	}
}

func TestParseSince(t *testing.T) {
	now := t0
	for _, tc := range []struct {
		in   string
		want time.Time
		err  string
	}{
		{"", time.Time{}, ""},
		{"10m", now.Add(-10 * time.Minute), ""},
		{"2026-11-25T22:30:00Z", time.Date(2026, 11, 25, 22, 30, 0, 0, time.UTC), ""},
		{"-5m", time.Time{}, "not a negative one"},
		{"yesterday", time.Time{}, `--since "yesterday": want a duration`},
	} {
		got, err := parseSince(tc.in, now)
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) || tc.err == "" && (err != nil || !got.Equal(tc.want)) {
			t.Errorf("parseSince(%q) = %v, %v; want %v, %q", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// TestHistoryBound: more history than maxHistory is an error that says
// how to select less, not an allocation without end.
func TestHistoryBound(t *testing.T) {
	h := newHistory(-1, time.Time{})
	line := strings.Repeat("x", 1<<20)
	var err error
	for i := 0; i <= maxHistory>>20 && err == nil; i++ {
		err = h.add(logLine{proc: fmt.Sprint("p", i%3), text: line})
	}
	if err == nil || !strings.Contains(err.Error(), "--tail, --since or --component") {
		t.Errorf("error %v", err)
	}
}
