package aggregator

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/fedscale/fedscale-go/runtime/config"
	"github.com/fedscale/fedscale-go/runtime/fedlog"
	"github.com/fedscale/fedscale-go/runtime/jobapi"
	pb "github.com/fedscale/fedscale-go/runtime/proto/fedscalev1"
)

// The job document stays bounded however long the job runs and however
// many executors it has: the latest rounds, the lowest ranks, the latest
// events, each message clipped, counts over every rank.
func TestJobDocumentBounds(t *testing.T) {
	c := config.Default()
	c.JobName = "bounds"
	c.Model = "logistic"
	c.LogPath = t.TempDir()
	c.Rounds = 5000
	const executors = 300
	a, err := New(Options{Conf: c, Executors: executors})
	if err != nil {
		t.Fatal(err)
	}
	st := &a.st
	long := strings.Repeat("é", 1000) // two bytes each: a cut must not split one
	for r := int32(1); r <= executors; r++ {
		s := newSession(&pb.Hello{Rank: r, Slots: 2}, st.now())
		st.sched.register(s)
		switch {
		case r%3 == 1:
			st.sched.ban(s, long)
			st.sched.remove(s, "evicted")
		case r%3 == 2:
			st.sched.remove(s, long)
		}
	}
	for r := 0; r < 1500; r++ {
		top := 0.5
		a.mon.recorded(st.now(), fedlog.Record{Round: r, WallClock: float64(r), Top1: &top, Top5: &top})
	}
	a.mon.publish(st, "")

	srv := httptest.NewServer(a.JobHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + jobapi.Path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > jobapi.MaxBytes {
		t.Fatalf("document of %d bytes, over jobapi.MaxBytes %d", len(b), jobapi.MaxBytes)
	}
	j, err := jobapi.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, chk := range []struct {
		what      string
		got, want int
	}{
		{"history", len(j.History), jobapi.MaxHistory},
		{"history_dropped", j.HistoryDropped, 1500 - jobapi.MaxHistory},
		{"first round kept", j.History[0].Round, 1500 - jobapi.MaxHistory},
		{"executors listed", len(j.Executors), jobapi.MaxExecutors},
		{"events", len(j.Events), jobapi.MaxEvents},
		{"executors total", j.ExecutorCounts.Total, executors},
		{"executors evicted", j.ExecutorCounts.Evicted, executors / 3},
		{"executors lost", j.ExecutorCounts.Lost, executors / 3},
		{"executors connected", j.ExecutorCounts.Connected, executors / 3},
	} {
		if chk.got != chk.want {
			t.Errorf("%s: %d, want %d", chk.what, chk.got, chk.want)
		}
	}
	if got := j.Events[len(j.Events)-1].Message; !strings.HasPrefix(got, "Round 1499 evaluated") {
		t.Errorf("latest event %q, want round 1499's", got)
	}
	for _, e := range j.Executors[:3] {
		if len(e.Reason) > jobapi.MaxEventMessage+len("...") || !utf8.ValidString(e.Reason) {
			t.Errorf("executor %d: reason of %d bytes (or cut inside a character)", e.Rank, len(e.Reason))
		}
	}
	if e := j.Executors[0]; e.State != jobapi.ExecutorEvicted || e.LastContact == nil || e.Slots != 2 {
		t.Errorf("executor 1: %+v, want evicted with its last contact and slots", e)
	}
	if e := j.Executors[1]; e.State != jobapi.ExecutorLost {
		t.Errorf("executor 2: %+v, want lost", e)
	}
	// The ETA: 1 s a round over this run's rounds, 5000-1499 to go.
	if j.ETASeconds == nil || *j.ETASeconds != 3501 {
		t.Errorf("eta_seconds %v, want 3501", j.ETASeconds)
	}
}

// BenchmarkJobHandler is one request for the job document at its largest
// (jobapi.MaxHistory rounds, jobapi.MaxExecutors executors, every event):
// whole, and after the latest round as the page polls it.
func BenchmarkJobHandler(b *testing.B) {
	c := config.Default()
	c.JobName, c.Model, c.LogPath, c.Rounds = "bench", "logistic", b.TempDir(), 5000
	a, err := New(Options{Conf: c, Executors: jobapi.MaxExecutors})
	if err != nil {
		b.Fatal(err)
	}
	st := &a.st
	for r := int32(1); r <= jobapi.MaxExecutors; r++ {
		st.sched.register(newSession(&pb.Hello{Rank: r, Slots: 2}, st.now()))
	}
	for r := 0; r < 1500; r++ {
		top, loss := 0.5, 1.25
		a.mon.recorded(st.now(), fedlog.Record{Round: r, WallClock: float64(r), Participants: 10, Loss: &loss, Top1: &top, Top5: &top, TestLoss: &loss})
	}
	a.mon.publish(st, "")
	h := a.JobHandler()
	for _, q := range []string{"", "?" + jobapi.SinceParam + "=1499"} {
		b.Run("query="+q, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, jobapi.Path+q, nil)
			b.ReportAllocs()
			for b.Loop() {
				w := &countingWriter{h: http.Header{}}
				h.ServeHTTP(w, req)
				if w.code != 0 && w.code != http.StatusOK {
					b.Fatal(w.code)
				}
				b.SetBytes(int64(w.n))
			}
		})
	}
}

// countingWriter is a ResponseWriter that counts the body's bytes: the
// benchmark measures the handler, not a recorder's copy.
type countingWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *countingWriter) Header() http.Header         { return w.h }
func (w *countingWriter) WriteHeader(code int)        { w.code = code }
func (w *countingWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// The handler's encodings are of the latest snapshot: a publication
// replaces them, and each ?since= gets its own rounds.
func TestJobHandlerEncodingsFollowSnapshot(t *testing.T) {
	c := config.Default()
	c.JobName, c.Model, c.LogPath, c.Rounds = "cache", "logistic", t.TempDir(), 50
	a, err := New(Options{Conf: c, Executors: 1})
	if err != nil {
		t.Fatal(err)
	}
	st := &a.st
	h := a.JobHandler()
	get := func(q string) []int {
		t.Helper()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, jobapi.Path+q, nil))
		j, err := jobapi.Decode(w.Body.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		var rounds []int
		for _, r := range j.History {
			rounds = append(rounds, r.Round)
		}
		return rounds
	}
	for r := 0; r < 3; r++ {
		a.mon.recorded(st.now(), fedlog.Record{Round: r})
	}
	a.mon.publish(st, "")
	for _, step := range []struct {
		record int // -1: none
		q      string
		want   string
	}{
		{-1, "", "[0 1 2]"},
		{-1, "?since=0", "[1 2]"},
		{-1, "?since=1", "[2]"},
		{-1, "", "[0 1 2]"},
		{3, "", "[0 1 2 3]"},
		{-1, "?since=1", "[2 3]"},
		{-1, "?since=3", "[]"},
		{4, "?since=3", "[4]"},
		{-1, "?since=-1", "[0 1 2 3 4]"},
	} {
		if step.record >= 0 {
			a.mon.recorded(st.now(), fedlog.Record{Round: step.record})
			a.mon.publish(st, "")
		}
		if got := fmt.Sprint(get(step.q)); got != step.want {
			t.Errorf("after round %d, %q: history rounds %s, want %s", step.record, step.q, got, step.want)
		}
	}
}
