package aggregator

import (
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
