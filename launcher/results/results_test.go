package results

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fedscale/fedscale-go/runtime/fedlog"
)

func f(v float64) *float64 { return &v }

// records is a job of rounds 0..n, evaluated every second round.
func records(from, n int) []fedlog.Record {
	var out []fedlog.Record
	for r := from; r <= n; r++ {
		rec := fedlog.Record{Round: r, VirtualClock: float64(r) * 30, WallClock: float64(r), Participants: 4, Planned: 5, LearningRate: 0.05}
		if r > 0 {
			rec.Loss = f(2 / float64(r+1))
		}
		if r%2 == 0 {
			rec.Top1, rec.Top5, rec.TestLoss = f(0.1*float64(r)), f(0.2*float64(r)), f(1/float64(r+1))
		}
		out = append(out, rec)
	}
	return out
}

func writeRun(t *testing.T, dir, stamp string, recs []fedlog.Record, tail string) {
	t.Helper()
	var b bytes.Buffer
	for _, r := range recs {
		line, _ := json.Marshal(r)
		b.Write(append(line, '\n'))
	}
	b.WriteString(tail)
	if err := os.MkdirAll(filepath.Join(dir, stamp), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, stamp, "metrics.jsonl"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeRuns writes runs (time stamp -> records) as runs written in the
// order of order, or of their stamps when order is nil, an hour apart.
func writeRuns(t *testing.T, dir string, runs map[string][]fedlog.Record, order []string, tail string) {
	t.Helper()
	if order == nil {
		for stamp := range runs {
			order = append(order, stamp)
		}
		sort.Strings(order)
	}
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for i, stamp := range order {
		writeRun(t, dir, stamp, runs[stamp], tail)
		at := start.Add(time.Duration(i) * time.Hour)
		if err := os.Chtimes(filepath.Join(dir, stamp, "metrics.jsonl"), at, at); err != nil {
			t.Fatal(err)
		}
	}
}

func rounds(recs []fedlog.Record) []int {
	var out []int
	for _, r := range recs {
		out = append(out, r.Round)
	}
	return out
}

// A resumed job's runs merge into its history: the later run replaces the
// earlier one's rounds from its first on; a line being written is left
// out; a bad file is an error naming it and the line.
func TestFromLogs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		runs   map[string][]fedlog.Record
		order  []string // the runs' order, when their stamps' is not it
		tail   string
		rounds []int
		err    string
	}{
		{"one run", map[string][]fedlog.Record{"1201_100000": records(0, 4)}, nil, "", []int{0, 1, 2, 3, 4}, ""},
		{"resumed", map[string][]fedlog.Record{"1201_100000": records(0, 5), "1201_110000": records(4, 6)}, nil, "", []int{0, 1, 2, 3, 4, 5, 6}, ""},
		// Stamps carry no year: January's run comes after December's.
		{"resumed in the new year", map[string][]fedlog.Record{"1231_230000": records(0, 5), "0101_010000": records(4, 6)}, []string{"1231_230000", "0101_010000"}, "", []int{0, 1, 2, 3, 4, 5, 6}, ""},
		{"partial line", map[string][]fedlog.Record{"1201_100000": records(0, 2)}, nil, `{"round":3,"virt`, []int{0, 1, 2}, ""},
		{"no runs", nil, nil, "", []int(nil), ""},
		{"corrupt", map[string][]fedlog.Record{"1201_100000": records(0, 1)}, nil, "not json\n", nil, "metrics.jsonl:3: invalid character"},
		{"out of order", map[string][]fedlog.Record{"1201_100000": append(records(0, 2), records(1, 1)...)}, nil, "", nil, "metrics.jsonl:4: round 1 after round 2"},
		{"long line", map[string][]fedlog.Record{"1201_100000": records(0, 1)}, nil, strings.Repeat("x", maxLine+1) + "\n", nil, "line over 65536 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeRuns(t, dir, tc.runs, tc.order, tc.tail)
			res, err := FromLogs("job", dir)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := rounds(res.Records); !equal(got, tc.rounds) || res.Source != SourceFiles {
				t.Fatalf("rounds %v from %s, want %v", got, res.Source, tc.rounds)
			}
		})
	}
}

// aggLog is the aggregator's output of recs as it logs them: a round line
// after each trained round, a test line after each evaluated one, among
// other lines.
func aggLog(recs []fedlog.Record) string {
	var b strings.Builder
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	line := func(msg string) { b.Write(fedlog.FormatLine(at, fedlog.Info, "state.go", 1, msg)) }
	line("Registered 30 clients (30 eligible)")
	for _, r := range recs {
		if r.Loss != nil {
			line(fedlog.RoundLine(r.WallClock, r.Round, r.Planned, r.Participants, *r.Loss))
		}
		if r.Top1 != nil {
			line(fedlog.TestLine(r.Round, r.VirtualClock, *r.Top1, *r.Top5, *r.TestLoss))
		}
		line("Selected 5 participants")
	}
	return b.String()
}

// asLogged is recs as their log lines say them: no learning rate, no
// virtual clock where a round was not evaluated, and nothing of training
// where there was none (round 0).
func asLogged(recs []fedlog.Record) []fedlog.Record {
	out := make([]fedlog.Record, len(recs))
	for i, r := range recs {
		r.LearningRate = 0
		if r.Top1 == nil {
			r.VirtualClock = 0
		}
		if r.Loss == nil {
			r.Participants, r.Planned, r.WallClock = 0, 0, 0
		}
		out[i] = r
	}
	return out
}

// An ended aggregator's output gives its rounds: a resumed run's log
// starts after round 0 (Dropped says how many are missing), a container
// restarted in place starts a new run whose rounds replace the earlier
// ones, and long lines and other output are skipped.
func TestFromLog(t *testing.T) {
	for _, tc := range []struct {
		name    string
		log     string
		want    []fedlog.Record
		dropped int
	}{
		{"whole job", aggLog(records(0, 6)), asLogged(records(0, 6)), 0},
		{"resumed", aggLog(records(4, 6)), asLogged(records(4, 6)), 4},
		{"restarted in place", aggLog(records(0, 5)) + aggLog(records(3, 6)), asLogged(records(0, 6)), 0},
		{"restarted from scratch", aggLog(records(0, 5)) + aggLog(records(0, 2)), asLogged(records(0, 2)), 0},
		{"long line", strings.Repeat("x", maxLine*2) + "\n" + aggLog(records(0, 2)), asLogged(records(0, 2)), 0},
		{"last line without newline", strings.TrimSuffix(aggLog(records(0, 2)), "\n"), asLogged(records(0, 2)), 0},
		{"no rounds", "(12-01) 10:00:00 INFO     [main.go:1] starting\n", []fedlog.Record{}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := FromLog("job", strings.NewReader(tc.log), "log")
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(res.Records)
			want, _ := json.Marshal(tc.want)
			if !bytes.Equal(got, want) || res.Dropped != tc.dropped || res.Source != SourceLog {
				t.Errorf("records from %s, %d dropped:\n%s\nwant %d dropped:\n%s", res.Source, res.Dropped, got, tc.dropped, want)
			}
		})
	}
	// A non-finite loss is recorded as metrics.jsonl does.
	log := string(fedlog.FormatLine(time.Now(), fedlog.Info, "state.go", 1, fedlog.RoundLine(1, 1, 5, 4, math.NaN())))
	res, err := FromLog("job", strings.NewReader(log), "log")
	if err != nil || len(res.Records) != 1 || res.Records[0].Loss != nil || res.Records[0].NonFinite["loss"] != "NaN" {
		t.Errorf("NaN loss: %+v, %v", res, err)
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestWrite(t *testing.T) {
	res := Results{Job: "j", Source: SourceFiles, State: StateEnded, Records: records(0, 2)}
	res.Records[1].NonFinite = map[string]string{"loss": "NaN"}
	res.Records[1].Loss = nil
	for _, tc := range []struct {
		format string
		want   []string // lines, or substrings for json
	}{
		{"csv", []string{
			"round,virtual_clock,wall_clock,participants,planned,learning_rate,loss,top_1,top_5,test_loss",
			"0,0,0,4,5,0.05,,0,0,1",
			"1,30,1,4,5,0.05,NaN,,,",
			"2,60,2,4,5,0.05,0.6666666666666666,0.2,0.4,0.3333333333333333",
		}},
		{"table", []string{
			"ROUND  VIRTUAL CLOCK  WALL CLOCK  PARTICIPANTS  PLANNED  LEARNING RATE  LOSS                TOP 1  TOP 5  TEST LOSS",
			"0      0              0           4             5        0.05           -                   0      0      1",
			"1      30             1           4             5        0.05           NaN                 -      -      -",
			"2      60             2           4             5        0.05           0.6666666666666666  0.2    0.4    0.3333333333333333",
		}},
	} {
		var b bytes.Buffer
		if err := Write(&b, tc.format, res); err != nil {
			t.Fatal(err)
		}
		if got := strings.Split(strings.TrimRight(b.String(), "\n"), "\n"); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s:\n%s\nwant\n%s", tc.format, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
		}
	}
	var b bytes.Buffer
	if err := Write(&b, "json", res); err != nil {
		t.Fatal(err)
	}
	var back Results
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || len(back.Records) != 3 || back.Records[1].NonFinite["loss"] != "NaN" {
		t.Errorf("json round trip: %v %+v", err, back)
	}
	if err := Write(&b, "yaml", res); err == nil {
		t.Error("yaml: no error")
	}
}

// The plot's golden check, robust to fonts: the file's dimensions, the
// series drawn (one legend entry and one line each), the axis ranges.
func TestPlot(t *testing.T) {
	res := Results{Job: "femnist", Rounds: 10, Records: records(0, 6)}
	acc, loss := Panels(res.Records)
	if len(acc) != 2 || len(loss) != 2 || len(acc[0].Points) != 4 || len(loss[0].Points) != 6 || len(loss[1].Points) != 4 {
		t.Fatalf("panels %+v %+v", acc, loss)
	}
	p, err := panel("t", "accuracy", acc, res.Rounds)
	if err != nil {
		t.Fatal(err)
	}
	if p.X.Min != 0 || p.X.Max != 10 {
		t.Errorf("round axis %v..%v, want 0..10 (job_conf.rounds)", p.X.Min, p.X.Max)
	}

	var pngBuf bytes.Buffer
	if err := Plot(&pngBuf, "png", res); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&pngBuf)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 768 || b.Dy() != 576 {
		t.Errorf("png %dx%d, want 768x576", b.Dx(), b.Dy())
	}

	var svg bytes.Buffer
	if err := Plot(&svg, "svg", res); err != nil {
		t.Fatal(err)
	}
	var root struct {
		Width  string `xml:"width,attr"`
		Height string `xml:"height,attr"`
	}
	if err := xml.Unmarshal(svg.Bytes(), &root); err != nil {
		t.Fatal(err)
	}
	if root.Width != "576pt" || root.Height != "432pt" {
		t.Errorf("svg %s x %s, want 576pt x 432pt", root.Width, root.Height)
	}
	s := svg.String()
	for _, name := range []string{"top-1", "top-5", "training loss", "test loss", "femnist: test accuracy", "femnist: loss"} {
		if !strings.Contains(s, ">"+name+"<") {
			t.Errorf("svg lacks the text %q", name)
		}
	}
	// Each panel's two series in their two colours: a line and a legend
	// sample each, at least.
	for _, c := range []string{"stroke:#1F77B4", "stroke:#FF7F0E"} {
		if n := strings.Count(s, c); n != 4 {
			t.Errorf("colour %s drawn %d times, want a line and a legend entry in each panel", c, n)
		}
	}

	if err := Plot(&svg, "svg", Results{Job: "x"}); err != ErrNoRounds {
		t.Errorf("plot of no rounds: %v, want ErrNoRounds", err)
	}
	for path, want := range map[string]string{"a.png": "png", "b.SVG": "svg", "c.pdf": "", "d": ""} {
		got, err := PlotFormat(path)
		if got != want || (want == "" && (err == nil || !strings.Contains(err.Error(), "--plot "+path+": want a .png or .svg file"))) {
			t.Errorf("PlotFormat(%s) = %q, %v", path, got, err)
		}
	}
}
