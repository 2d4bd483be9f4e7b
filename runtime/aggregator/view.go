package aggregator

// The job as /api/v1/job shows it (runtime/jobapi). The loop keeps what
// the document needs beyond the job's state (each rank's counts, the
// latest events, this run's history) in a monitor, and publishes an
// immutable snapshot of the document that HTTP handlers read without
// touching the loop, as /metrics reads the gauges the loop sets.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/fedscale/fedscale-go/runtime/fedlog"
	"github.com/fedscale/fedscale-go/runtime/jobapi"
)

// publishEvery is how often, at most, events republish the document; the
// heartbeat tick and a recorded round republish it regardless.
const publishEvery = 200 * time.Millisecond

// monitor is the loop's record of what the job document shows beyond
// state, and the latest published document. Every method but snapshot
// runs on the loop.
type monitor struct {
	ranks   map[int32]*rankView
	events  []jobapi.Event // the latest, oldest first, at most MaxEvents
	history []fedlog.Record
	dropped int
	first   *fedlog.Record // this run's first record, for the ETA
	lastPub time.Time
	urgent  bool

	pub atomic.Pointer[jobapi.Job]
	// whole and tail are the latest encodings of a published document:
	// whole, and its history after some round (the page asks for the
	// rounds after its latest). Encoding the largest document takes about
	// a millisecond and a half; pollers between two publications share one.
	whole, tail atomic.Pointer[encoded]
}

// encoded is doc, its history from the index from on, as JSON.
type encoded struct {
	doc  *jobapi.Job
	from int
	body []byte
}

// rankView is what the monitor knows of a rank that registered: its
// latest session and its counts over every session it had.
type rankView struct {
	s              *session
	done, reissued int
}

func newMonitor() *monitor { return &monitor{ranks: map[int32]*rankView{}} }

func (m *monitor) rank(r int32) *rankView {
	v := m.ranks[r]
	if v == nil {
		v = &rankView{}
		m.ranks[r] = v
	}
	return v
}

// clipMessage bounds a message the document carries to
// jobapi.MaxEventMessage bytes, cut at a character boundary.
func clipMessage(msg string) string {
	if len(msg) <= jobapi.MaxEventMessage {
		return msg
	}
	cut := jobapi.MaxEventMessage
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + "..."
}

// event records a notable event at now.
func (m *monitor) event(now time.Time, level fedlog.Level, format string, args ...any) {
	msg := clipMessage(fmt.Sprintf(format, args...))
	if len(m.events) == jobapi.MaxEvents {
		// A new slice: a published document holds the old one.
		m.events = append([]jobapi.Event(nil), m.events[1:]...)
	}
	lv := map[fedlog.Level]string{fedlog.Debug: "info", fedlog.Info: "info", fedlog.Warning: "warning", fedlog.Error: "error"}[level]
	m.events = append(m.events, jobapi.Event{Time: now.UTC(), Level: lv, Message: msg})
}

// Hooks, called where the scheduler and the state change what the
// document shows.

func (m *monitor) registered(now time.Time, s *session, rejoin bool) {
	m.rank(s.rank).s = s
	what := "registered"
	if rejoin {
		what = "rejoined"
	}
	m.event(now, fedlog.Info, "Executor %d %s (%d slots)", s.rank, what, s.slots)
}

func (m *monitor) removed(now time.Time, s *session, reason string) {
	m.event(now, fedlog.Warning, "Executor %d disconnected: %s", s.rank, reason)
}

func (m *monitor) evicted(now time.Time, rank int32, reason string) {
	m.event(now, fedlog.Error, "Executor %d evicted: %s", rank, reason)
}

func (m *monitor) taskDone(rank int32) { m.rank(rank).done++ }

// reissued counts n tasks of rank's that went to other executors (what
// says which and why, for the event).
func (m *monitor) reissued(now time.Time, rank int32, n int, why string) {
	if n == 0 {
		return
	}
	m.rank(rank).reissued += n
	m.event(now, fedlog.Warning, "Re-issued %d task(s) of executor %d: %s", n, rank, why)
}

// recorded adds a round's metrics.jsonl record to the history.
func (m *monitor) recorded(now time.Time, r fedlog.Record) {
	if m.first == nil {
		m.first = &r
	}
	if len(m.history) == jobapi.MaxHistory {
		// A new slice: a published document holds the old one. Once per
		// round, so copying MaxHistory records is cheap.
		m.history = append([]fedlog.Record(nil), m.history[1:]...)
		m.dropped++
	}
	m.history = append(m.history, r)
	m.urgent = true
	if r.Top1 != nil {
		m.event(now, fedlog.Info, "Round %d evaluated: top-1 %s, top-5 %s", r.Round, fedlog.PyFloat(*r.Top1), fedlog.PyFloat(*r.Top5))
	}
}

// seed starts the history with a resumed job's earlier rounds (dropped:
// how many earlier still were left out); the ETA stays this run's.
func (m *monitor) seed(recs []fedlog.Record, dropped int) {
	m.history, m.dropped = recs, dropped
}

func (m *monitor) checkpointed(now time.Time, round int) {
	m.event(now, fedlog.Info, "Checkpoint of round %d written", round)
}

func (m *monitor) failed(now time.Time, err error) {
	m.event(now, fedlog.Error, "Job failed: %v", err)
	m.urgent = true
}

// maybePublish publishes st's document when the last one is older than
// publishEvery or a round was recorded since.
func (m *monitor) maybePublish(st *state) {
	if m.urgent || st.now().Sub(m.lastPub) >= publishEvery {
		m.publish(st, "")
	}
}

// publish builds st's document and makes it the one served; state, when
// not "", overrides the state the job is in (stopped).
func (m *monitor) publish(st *state, state string) {
	now := st.now()
	m.lastPub, m.urgent = now, false
	c := st.conf
	j := &jobapi.Job{
		APIVersion: jobapi.Version,
		Job:        c.JobName,
		TimeStamp:  st.timeStamp,
		Config: jobapi.Config{
			Model: c.Model, DataSet: c.DataSet, ExperimentMode: string(c.ExperimentMode), Rounds: c.Rounds,
			NumParticipants: c.NumParticipants, Overcommitment: c.Overcommitment, NumExecutors: st.opt.Executors,
			GradientPolicy: c.GradientPolicy, SampleMode: c.SampleMode, EvalInterval: c.EvalInterval,
			LocalSteps: c.LocalSteps, BatchSize: c.BatchSize, LearningRate: c.LearningRate,
		},
		Round:             st.round,
		Rounds:            c.Rounds,
		RoundPlanned:      st.planned,
		RoundParticipants: len(st.kept),
		ResumedAt:         st.resumedAt,
		VirtualClock:      st.clock,
		TasksReissued:     st.sched.reissued,
		ResultsRejected:   st.rejected,
		History:           m.history,
		HistoryDropped:    m.dropped,
		Events:            m.events,
		Updated:           now.UTC(),
	}
	if !st.started.IsZero() {
		j.WallClock = st.wall()
	}
	switch {
	case state != "":
		j.State = state
	case st.done && st.err != nil:
		j.State, j.Error = jobapi.StateFailed, st.err.Error()
	case st.done:
		j.State = jobapi.StateFinished
	case st.phase == training:
		j.State = jobapi.StateTraining
	case st.phase == evaluating:
		j.State = jobapi.StateEvaluating
	default:
		j.State = jobapi.StateWaiting
	}
	if j.History == nil {
		j.History = []fedlog.Record{}
	}
	if j.Events == nil {
		j.Events = []jobapi.Event{}
	}
	if n := len(m.history); n > 0 && m.first != nil && !st.done && state == "" {
		first, last := m.first, m.history[n-1]
		if d := last.Round - first.Round; d > 0 {
			eta := (last.WallClock - first.WallClock) / float64(d) * float64(c.Rounds-last.Round)
			if finite(eta) && eta >= 0 {
				j.ETASeconds = &eta
			}
		}
	}
	m.executors(st, j)
	m.pub.Store(j)
}

// executors fills j's executor list (the lowest MaxExecutors ranks) and
// counts (every rank).
func (m *monitor) executors(st *state, j *jobapi.Job) {
	total := st.opt.Executors
	n := min(total, jobapi.MaxExecutors)
	j.Executors = make([]jobapi.Executor, 0, n)
	for r := int32(1); r <= int32(n); r++ {
		j.Executors = append(j.Executors, m.executor(st, r))
	}
	c := jobapi.ExecutorCounts{Total: total, Waiting: total - len(m.ranks)}
	for r := range m.ranks {
		switch m.executor(st, r).State {
		case jobapi.ExecutorConnected:
			c.Connected++
		case jobapi.ExecutorLost:
			c.Lost++
		case jobapi.ExecutorEvicted:
			c.Evicted++
		case jobapi.ExecutorDone:
			c.Done++
		}
	}
	j.ExecutorCounts = c
}

// executor is rank r's entry.
func (m *monitor) executor(st *state, r int32) jobapi.Executor {
	e := jobapi.Executor{Rank: r, State: jobapi.ExecutorWaiting}
	v := m.ranks[r]
	if v == nil || v.s == nil {
		return e
	}
	s := v.s
	e.Slots, e.TasksDone, e.TasksReissued = s.slots, v.done, v.reissued
	last := s.lastSeen
	if t := time.Unix(0, s.lastRecv.Load()); t.After(last) {
		last = t
	}
	last = last.UTC()
	e.LastContact = &last
	if why := st.bans.reason(r); why != "" {
		e.State, e.Reason = jobapi.ExecutorEvicted, clipMessage(why)
		return e
	}
	if st.sched.current(s) {
		e.State = jobapi.ExecutorConnected
		return e
	}
	// Every drop aborts the stream with a reason; only the hang-up
	// after the job's end closes it without one.
	if why := s.abortReason(); why != "" {
		e.State, e.Reason = jobapi.ExecutorLost, clipMessage(why)
	} else {
		e.State = jobapi.ExecutorDone
	}
	return e
}

// snapshot is the latest published document; nil before the first.
func (m *monitor) snapshot() *jobapi.Job { return m.pub.Load() }

// JobHandler serves the job document (jobapi.Path): GET or HEAD, with an
// optional ?since=ROUND. It reads the latest published snapshot only, so
// any number of clients cost the loop nothing, and encodes each snapshot
// once per distinct history start (monitor.whole, monitor.tail).
func (a *Aggregator) JobHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "read-only: GET or HEAD", http.StatusMethodNotAllowed)
			return
		}
		since, err := jobapi.ParseSince(r.URL.Query().Get(jobapi.SinceParam))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		doc := a.mon.snapshot()
		from := 0
		if since >= 0 {
			from = sort.Search(len(doc.History), func(i int) bool { return doc.History[i].Round > since })
		}
		cache := &a.mon.whole
		if from > 0 {
			cache = &a.mon.tail
		}
		e := cache.Load()
		if e == nil || e.doc != doc || e.from != from {
			j := *doc // a copy: the snapshot is shared
			j.History = j.History[from:]
			var b bytes.Buffer
			if err := json.NewEncoder(&b).Encode(&j); err != nil {
				http.Error(w, "job document: "+err.Error(), http.StatusInternalServerError)
				return
			}
			e = &encoded{doc: doc, from: from, body: b.Bytes()}
			cache.Store(e)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(e.body)
	})
}
