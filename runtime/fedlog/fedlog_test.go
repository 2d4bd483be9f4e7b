package fedlog

import (
	"bytes"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPyFloat(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{
		{0, "0.0"}, {1, "1.0"}, {100, "100.0"}, {0.8123, "0.8123"}, {1234567, "1234567.0"},
		{1e-5, "1e-05"}, {0.0001, "0.0001"}, {1e16, "1e+16"}, {-2.5, "-2.5"}, {float64(float32(0.1)), "0.10000000149011612"},
	} {
		if got := PyFloat(tc.in); got != tc.want {
			t.Errorf("PyFloat(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestLines(t *testing.T) {
	ts := time.Date(2026, 11, 25, 9, 5, 3, 0, time.UTC)
	got := string(FormatLine(ts, Info, "aggregator.go", 42, "hello"))
	if want := "(11-25) 09:05:03 INFO     [aggregator.go:42] hello\n"; got != want {
		t.Errorf("FormatLine = %q, want %q", got, want)
	}
	if got, want := TestLine(5, 120.5, 0.75, 0.9, 0.61), "FL Testing in round: 5, virtual_clock: 120.5, results: {'round': 5, 'clock': 120.5, 'top_1': 0.75, 'top_5': 0.9, 'loss': 0.61}"; got != want {
		t.Errorf("TestLine = %q, want %q", got, want)
	}
	if got, want := RoundLine(12.6, 3, 13, 10, 1.5), "Wall clock: 13 s, round: 3, Planned participants: 13, Succeed participants: 10, Training loss: 1.5"; got != want {
		t.Errorf("RoundLine = %q, want %q", got, want)
	}
}

func TestBufferThenAttach(t *testing.T) {
	var stderr bytes.Buffer
	l := New(&stderr)
	l.Buffer()
	l.Infof("early %d", 1)
	path := filepath.Join(t.TempDir(), "a", "log")
	c, err := l.AttachFile(path)
	if err != nil {
		t.Fatal(err)
	}
	l.Warnf("late")
	c.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "INFO     [fedlog_test.go:") || !strings.HasSuffix(lines[0], "early 1") || !strings.Contains(lines[1], "WARNING  [") {
		t.Errorf("log file = %q", b)
	}
	if strings.Count(stderr.String(), "\n") != 2 {
		t.Errorf("stderr = %q", stderr.String())
	}
}

// The slog side writes the same lines: the caller's file and line, the
// level names Python uses, attributes after the message.
func TestSlogLines(t *testing.T) {
	var out bytes.Buffer
	l := New(&out)
	l.SetLevel(Debug)
	sl := l.Slog().With("job", "j 1").WithGroup("task")
	sl.Warn("slow", "id", 7)
	l.Slog().Debug("dbg")
	l.Errorf("bad %s", "thing")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %q", out.String())
	}
	for i, want := range []string{`WARNING  [fedlog_test.go:`, `DEBUG    [fedlog_test.go:`, `ERROR    [fedlog_test.go:`} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d = %q, want it to contain %q", i, lines[i], want)
		}
	}
	if !strings.HasSuffix(lines[0], `] slow job="j 1" task.id=7`) || !strings.HasSuffix(lines[2], "] bad thing") {
		t.Errorf("lines = %q", lines)
	}
	l.SetLevel(Warning)
	l.Infof("hidden")
	l.Slog().Info("hidden")
	if strings.Contains(out.String(), "hidden") {
		t.Error("a line below the level was written")
	}
}

func TestPlain(t *testing.T) {
	var out bytes.Buffer
	sl := slog.New(NewPlain(&out, slog.LevelInfo))
	sl.Info("pushed x (2 referrers)")
	sl.With("image", "a").Warn("slow", "took", "3s")
	sl.Debug("hidden")
	if got, want := out.String(), "pushed x (2 referrers)\nslow image=a took=3s\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// A NaN or infinite value never costs its line: it is recorded under
// non_finite and the line is valid JSON.
func TestRecordNonFinite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metrics.jsonl")
	m, err := OpenMetrics(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range []float64{0.5, math.NaN(), math.Inf(1), math.Inf(-1)} {
		r := Record{Round: i}
		r.Loss = r.Value("loss", v)
		if err := m.Write(r); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
	}
	m.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"round":0,"virtual_clock":0,"wall_clock":0,"participants":0,"loss":0.5}
{"round":1,"virtual_clock":0,"wall_clock":0,"participants":0,"non_finite":{"loss":"NaN"}}
{"round":2,"virtual_clock":0,"wall_clock":0,"participants":0,"non_finite":{"loss":"+Inf"}}
{"round":3,"virtual_clock":0,"wall_clock":0,"participants":0,"non_finite":{"loss":"-Inf"}}
`
	if string(b) != want {
		t.Errorf("metrics file:\n%s\nwant:\n%s", b, want)
	}
}

// The round and test lines read back what RoundLine and TestLine wrote,
// behind a log prefix too; anything else is not one of them.
func TestParseLines(t *testing.T) {
	prefix := string(FormatLine(time.Date(2026, 11, 25, 9, 5, 3, 0, time.UTC), Info, "state.go", 645, ""))
	prefix = strings.TrimSuffix(prefix, "\n")
	for _, tc := range []struct {
		name  string
		line  string
		round *RoundValues
		test  *TestValues
	}{
		{"round", RoundLine(12.6, 3, 13, 10, 1.5), &RoundValues{13, 3, 13, 10, 1.5}, nil},
		{"round behind a prefix", prefix + RoundLine(0.2, 1, 10, 9, 0.25) + "\n", &RoundValues{0, 1, 10, 9, 0.25}, nil},
		{"test", TestLine(5, 120.5, 0.75, 0.9, 0.61), nil, &TestValues{5, 120.5, 0.75, 0.9, 0.61}},
		{"test behind a prefix", prefix + TestLine(0, 0, 0.1, 0.5, 2.3) + "\r\n", nil, &TestValues{0, 0, 0.1, 0.5, 2.3}},
		{"tiny values", TestLine(2, 1e-5, 0, 1, 1e-7), nil, &TestValues{2, 1e-5, 0, 1, 1e-7}},
		{"other line", prefix + "Registered 30 clients", nil, nil},
		{"rounds differ", "FL Testing in round: 5, virtual_clock: 1.0, results: {'round': 6, 'clock': 1.0, 'top_1': 0.5, 'top_5': 0.9, 'loss': 1.0}", nil, nil},
		{"not a number", "FL Testing in round: 5, virtual_clock: 1.0, results: {'round': 5, 'clock': 1.0, 'top_1': x, 'top_5': 0.9, 'loss': 1.0}", nil, nil},
		{"round too large", "Wall clock: 1 s, round: 99999999999, Planned participants: 1, Succeed participants: 1, Training loss: 1.0", nil, nil},
		{"cut short", strings.TrimSuffix(TestLine(5, 1, 0.5, 0.9, 1), "}"), nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := ParseRoundLine(tc.line)
			if ok != (tc.round != nil) || ok && r != *tc.round {
				t.Errorf("ParseRoundLine = %+v, %v; want %+v", r, ok, tc.round)
			}
			v, ok := ParseTestLine(tc.line)
			if ok != (tc.test != nil) || ok && v != *tc.test {
				t.Errorf("ParseTestLine = %+v, %v; want %+v", v, ok, tc.test)
			}
		})
	}
	// Non-finite losses read back as such.
	r, ok := ParseRoundLine(RoundLine(1, 1, 1, 1, math.NaN()))
	if !ok || !math.IsNaN(r.Loss) {
		t.Errorf("NaN loss: %+v, %v", r, ok)
	}
	v, ok := ParseTestLine(TestLine(1, 1, 0.5, 0.5, math.Inf(1)))
	if !ok || !math.IsInf(v.Loss, 1) {
		t.Errorf("infinite test loss: %+v, %v", v, ok)
	}
}
