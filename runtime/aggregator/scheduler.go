package aggregator

// Who runs what: tasks, the queue, dispatch to executors, re-issue and
// liveness. See scheduler.

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	pb "github.com/fedscale/fedscale-go/runtime/proto/fedscalev1"
	"github.com/fedscale/fedscale-go/runtime/tensor"
)

// taskKind is what a task asks of an executor: train one client, or
// evaluate one test shard.
type taskKind int

const (
	trainKind taskKind = iota
	evalKind
)

// task is one unit of work. A re-issued task gets a new id, so a result
// for the old id (from an executor presumed lost) is rejected.
type task struct {
	id       int64
	kind     taskKind
	round    int
	client   int64
	shard    int
	start    int64
	end      int64
	assigned *session
	// update receives a training task's weights as they arrive.
	update *pb.Assembly
	// owner pins the task to one executor rank (deployment mode: the
	// client's data lives there); 0 means any executor.
	owner int32
	// assignedAt is when it was sent to assigned. Its deadline counts from
	// then, or from assigned's last accepted result if that came later.
	assignedAt time.Time
	// work is what the task does, shared by every copy of it: a task that
	// fails or misses its deadline is copied, under a new id, for another
	// executor, and the first copy whose result is accepted ends them all.
	work *work
	// expiredAt is when it last missed its deadline (zero: never). It
	// stays live, holding its slot: its executor may still answer first.
	expiredAt time.Time
}

// work is one task's work across its copies.
type work struct {
	live     []*task // the live copies, oldest first
	failures int     // copies that failed or missed their deadline
	// avoid lists the ranks that failed it, which get it again only while
	// no other executor is connected.
	avoid []int32
}

// pending reports whether a live copy of w is still within its deadline
// (queued, or running and not expired).
func (w *work) pending() bool {
	for _, c := range w.live {
		if c.expiredAt.IsZero() {
			return true
		}
	}
	return false
}

// what names the task's work for the log: "client 7", "test shard 3".
func (t *task) what() string {
	if t.kind == trainKind {
		return fmt.Sprintf("client %d", t.client)
	}
	return fmt.Sprintf("test shard %d", t.shard)
}

// Limits on failing executors and tasks, and on how long a task may take.
const (
	// maxTaskFailures is how many times one task may fail (a failure
	// reported, a result refused, a deadline missed) before it is given
	// up for the round.
	maxTaskFailures = 3
	// maxStrikes is how many tasks in a row an executor may fail, or how
	// many deadlines it may miss, before it is evicted; an accepted result
	// starts the count again.
	maxStrikes = 3
	// TaskTimeoutFactor times the median service time of a task kind is a
	// task's deadline (never under the floor; see Options.TaskTimeout).
	TaskTimeoutFactor = 10
	// DefaultTaskTimeoutFloor is Options.TaskTimeoutFloor's default.
	DefaultTaskTimeoutFloor = 30 * time.Second
	// unmeasuredTaskTimeout bounds a task of a kind none of which has
	// finished yet (nothing measured: the model may be large, the
	// machines slow).
	unmeasuredTaskTimeout = 10 * time.Minute
)

// serviceTimes holds the latest service times of one task kind: for each
// accepted result, the time since its task was assigned or since its
// executor's previous accepted result, whichever is later (tasks queued
// behind others on an executor are not charged for the wait).
type serviceTimes struct {
	d    [64]time.Duration
	n    int // entries filled
	next int // the next entry to overwrite
}

func (w *serviceTimes) add(d time.Duration) {
	w.d[w.next] = d
	w.next = (w.next + 1) % len(w.d)
	w.n = min(w.n+1, len(w.d))
}

// median is the median of the recorded times; false when none is. A
// median, not a maximum: one executor slowing its answers down cannot
// stretch every deadline.
func (w *serviceTimes) median() (time.Duration, bool) {
	if w.n == 0 {
		return 0, false
	}
	d := slices.Clone(w.d[:w.n])
	slices.Sort(d)
	return d[len(d)/2], true
}

// scheduler owns who runs what: the connected executors' sessions, the
// table of live tasks and the queue of those not yet handed out, dispatch
// to sessions with free slots, re-issue of a lost executor's tasks and of
// failed ones, task deadlines, strikes and eviction of executors that keep
// failing, liveness and the deadlines for executors that stay away. It decides
// nothing about rounds: state creates the tasks, consumes their results
// and reacts when tasks are given up.
//
// Like state it lives on the event loop: no method may be called from
// another goroutine. Every order it produces (task ids, dispatch, re-issue,
// the executors it names) depends only on the order of its calls and on
// ranks, never on map iteration or timing.
type scheduler struct {
	*env
	proxMu float64 // FedProx's client-side term, sent with every train task

	sessions map[int32]*session // the connected executors, by rank
	everSeen map[int32]bool     // ranks that have ever registered

	tasks  map[int64]*task // live tasks, queued or assigned, by id
	queue  []*task         // tasks not yet assigned, in creation order
	nextID int64

	reissued      int       // tasks re-issued: their executor was lost, or failed them
	lastExecutor  time.Time // when the last executor registered, or the last one left
	warnedNoExecs bool

	service [2]serviceTimes // by taskKind
}

// newScheduler returns a scheduler with no executors and no tasks.
func newScheduler(e *env) scheduler {
	return scheduler{
		env:      e,
		proxMu:   serverOptions(e.conf).ClientProxMu(),
		sessions: map[int32]*session{},
		everSeen: map[int32]bool{},
		tasks:    map[int64]*task{},
	}
}

// open starts the deadlines: the job has been waiting for executors since
// now.
func (sc *scheduler) open(now time.Time) { sc.lastExecutor = now }

// register makes s the live session of its rank and returns the session it
// replaces (nil if none), which the caller must drop, and whether the rank
// had registered before.
func (sc *scheduler) register(s *session) (old *session, rejoin bool) {
	old = sc.sessions[s.rank]
	sc.sessions[s.rank] = s
	sc.lastExecutor = sc.now()
	sc.warnedNoExecs = false
	rejoin = sc.everSeen[s.rank]
	sc.everSeen[s.rank] = true
	sc.prom.executors.Set(float64(len(sc.sessions)))
	sc.mon.registered(sc.now(), s, rejoin)
	return old, rejoin
}

// current reports whether s is still the live session of its rank: false
// once it was dropped or replaced, so its late messages are ignored.
func (sc *scheduler) current(s *session) bool {
	return !s.gone && sc.sessions[s.rank] == s
}

// registered is the number of ranks that have ever registered.
func (sc *scheduler) registered() int { return len(sc.everSeen) }

// connected is the number of live sessions.
func (sc *scheduler) connected() int { return len(sc.sessions) }

// ranks returns the connected ranks in increasing order.
func (sc *scheduler) ranks() []int32 {
	ranks := make([]int32, 0, len(sc.sessions))
	for r := range sc.sessions {
		ranks = append(ranks, r)
	}
	sort.Slice(ranks, func(i, j int) bool { return ranks[i] < ranks[j] })
	return ranks
}

// add gives t the next id, makes it live and queues it. Ids increase in
// the order tasks are added.
func (sc *scheduler) add(t *task) {
	sc.nextID++
	t.id = sc.nextID
	sc.tasks[t.id] = t
	sc.queue = append(sc.queue, t)
	if t.work == nil {
		t.work = &work{}
	}
	t.work.live = append(t.work.live, t)
}

// held returns the live task id if s holds it, else nil: a result for a
// task that was re-issued, finished or never existed.
func (sc *scheduler) held(s *session, id int64) *task {
	t, ok := sc.tasks[id]
	if !ok || t.assigned != s {
		return nil
	}
	return t
}

// retire ends t: it is no longer live, its slot (if assigned) is free,
// and a result for it is rejected from then on.
func (sc *scheduler) retire(t *task) {
	delete(sc.tasks, t.id)
	if t.assigned != nil {
		delete(t.assigned.busy, t.id)
	}
	t.work.live = slices.DeleteFunc(t.work.live, func(c *task) bool { return c == t })
}

// accepted ends t's work, whose result from s was accepted at now: every
// live copy is retired, s's failures in a row start again, and the
// service time counts toward the deadlines.
func (sc *scheduler) accepted(s *session, t *task, now time.Time) {
	sc.service[t.kind].add(now.Sub(s.workingOn(t)))
	sc.mon.taskDone(s.rank)
	s.progress = now
	s.strikes = 0
	for len(t.work.live) > 0 {
		sc.retire(t.work.live[0])
	}
}

// timeout is how long a task of kind may run: TaskTimeout when set, else
// TaskTimeoutFactor times the median service time of the kind, never less
// than TaskTimeoutFloor; before any task of the kind has finished,
// unmeasuredTaskTimeout (or the floor, if longer).
func (sc *scheduler) timeout(kind taskKind) time.Duration {
	if sc.opt.TaskTimeout > 0 {
		return sc.opt.TaskTimeout
	}
	m, ok := sc.service[kind].median()
	if !ok {
		return max(sc.opt.TaskTimeoutFloor, unmeasuredTaskTimeout)
	}
	return max(sc.opt.TaskTimeoutFloor, TaskTimeoutFactor*m)
}

// overrun is a task past its deadline, with the limit it missed.
type overrun struct {
	s     *session
	t     *task
	limit time.Duration
}

// overdueTasks returns, in rank then task id order, the live tasks whose
// executor has been working on them, with no accepted result in between,
// for longer than their timeout at now (again, for a task that expired
// before: a timeout after that).
func (sc *scheduler) overdueTasks(now time.Time) []overrun {
	var out []overrun
	limits := [...]time.Duration{trainKind: sc.timeout(trainKind), evalKind: sc.timeout(evalKind)}
	for _, r := range sc.ranks() {
		s := sc.sessions[r]
		var ids []int64
		for id := range s.busy {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			t := s.busy[id]
			since := s.workingOn(t)
			if t.expiredAt.After(since) {
				since = t.expiredAt
			}
			if limit := limits[t.kind]; now.Sub(since) > limit {
				out = append(out, overrun{s, t, limit})
			}
		}
	}
	return out
}

// missed records that t, which s holds, passed its deadline at now: a
// strike for s, one however many of its tasks expire at once (a slow
// executor with many slots is not evicted for one slow spell). The first
// time, it is a failure of t's work (see failure); t stays live, since s
// may still answer first.
func (sc *scheduler) missed(s *session, t *task, now time.Time) (gaveUp *task, evict string) {
	first := t.expiredAt.IsZero()
	t.expiredAt = now
	if !s.struckAt.Equal(now) {
		s.strikes++
		s.struckAt = now
	}
	if first {
		gaveUp = sc.failure(s, t)
	}
	return gaveUp, sc.evictReason(s)
}

// failed records that s did not do t, which it holds: a failure it
// reported or a result that was refused. t is retired, s gets a strike,
// and the work goes on as failure says.
func (sc *scheduler) failed(s *session, t *task) (gaveUp *task, evict string) {
	sc.retire(t)
	s.strikes++
	return sc.failure(s, t), sc.evictReason(s)
}

// failure counts a failure of t's work on s's executor. Unless a copy is
// still within its deadline, the work is copied under a new id for
// another executor or, after maxTaskFailures, given up: every live copy
// is retired and t returned, for the caller to drop from the round.
func (sc *scheduler) failure(s *session, t *task) (gaveUp *task) {
	w := t.work
	w.failures++
	if !slices.Contains(w.avoid, s.rank) {
		w.avoid = append(w.avoid, s.rank)
	}
	if w.pending() {
		return nil
	}
	if w.failures >= maxTaskFailures {
		for len(w.live) > 0 {
			sc.retire(w.live[0])
		}
		return t
	}
	sc.add(sc.again(t))
	sc.reissued++
	sc.prom.reissued.Inc()
	sc.mon.reissued(sc.now(), s.rank, 1, t.what()+" failed there")
	return nil
}

// evictReason is why s must be evicted, "" while it need not.
func (sc *scheduler) evictReason(s *session) string {
	if s.strikes >= maxStrikes {
		return fmt.Sprintf("%d tasks in a row failed or missed their deadline", s.strikes)
	}
	return ""
}

// ban refuses s's rank for the rest of the job, with reason; the caller
// drops s.
func (sc *scheduler) ban(s *session, reason string) {
	sc.bans.add(s.rank, reason)
	sc.mon.evicted(sc.now(), s.rank, reason)
	sc.log.Errorf("Evicted executor %d: %s; its rank is refused for the rest of the job", s.rank, reason)
}

// allBanned reports whether every rank of the job has been evicted.
func (sc *scheduler) allBanned() bool { return sc.bans.len() >= sc.opt.Executors }

// again is a new copy of old's work, to be given an id by add.
func (sc *scheduler) again(old *task) *task {
	return &task{kind: old.kind, round: old.round, client: old.client, shard: old.shard, start: old.start, end: old.end, owner: old.owner,
		work: old.work}
}

// shuns reports whether t should not go to rank: it failed there, and an
// executor it has not failed on is connected.
func (sc *scheduler) shuns(t *task, rank int32) bool {
	if !slices.Contains(t.work.avoid, rank) {
		return false
	}
	for r := range sc.sessions {
		if !slices.Contains(t.work.avoid, r) {
			return true
		}
	}
	return false
}

// dispatch hands queued tasks, in queue order, to executors with free
// slots: a pinned task only to its owner, any other round-robin over the
// connected ranks in rank order. Each executor is sent model (as version)
// first if it does not have it yet; train tasks carry lr. Tasks no
// executor can take now stay queued, in order.
func (sc *scheduler) dispatch(model tensor.List, version int64, lr float64) {
	if len(sc.queue) == 0 {
		return
	}
	ranks := sc.ranks()
	if len(ranks) == 0 {
		return
	}
	rest := sc.queue[:0]
	next := 0
	for _, t := range sc.queue {
		if _, live := sc.tasks[t.id]; !live {
			continue
		}
		var s *session
		if t.owner != 0 {
			if cand := sc.sessions[t.owner]; cand != nil && cand.free() > 0 {
				s = cand
			}
		} else {
			for i := 0; i < len(ranks); i++ {
				cand := sc.sessions[ranks[(next+i)%len(ranks)]]
				if cand.free() > 0 && !sc.shuns(t, cand.rank) {
					s = cand
					next = (next + i + 1) % len(ranks)
					break
				}
			}
		}
		if s == nil {
			rest = append(rest, t)
			continue
		}
		sc.assign(s, t, model, version, lr)
	}
	sc.queue = rest
}

func (sc *scheduler) assign(s *session, t *task, model tensor.List, version int64, lr float64) {
	if s.modelVersion != version {
		// The announcement, then the values in chunks that share
		// model's memory (aggregation makes a new list, it never
		// writes into the one sent).
		v := version
		s.send(&pb.AggregatorMessage{Body: &pb.AggregatorMessage_Model{Model: &pb.Model{Version: v, Tensors: pb.Layout(model)}}})
		_ = pb.Chunks(model, func(off int64, d []float32) error {
			s.send(&pb.AggregatorMessage{Body: &pb.AggregatorMessage_ModelChunk{ModelChunk: &pb.ModelChunk{Version: v, Offset: off, Data: d}}})
			return nil
		})
		s.modelVersion = version
	}
	t.assigned = s
	t.assignedAt = sc.now()
	s.busy[t.id] = t
	switch t.kind {
	case trainKind:
		s.send(&pb.AggregatorMessage{Body: &pb.AggregatorMessage_Train{Train: &pb.TrainTask{
			Round: int64(t.round), TaskId: t.id, ClientId: t.client, ModelVersion: version,
			LearningRate: lr, Seed: TaskSeed(sc.conf.SampleSeed, t.round, t.client), ProxMu: sc.proxMu,
		}}})
		sc.prom.tasks.WithLabelValues("train").Inc()
	case evalKind:
		s.send(&pb.AggregatorMessage{Body: &pb.AggregatorMessage_Eval{Eval: &pb.EvalTask{
			Round: int64(t.round), TaskId: t.id, ModelVersion: version, Shard: int32(t.shard), Start: t.start, End: t.end,
		}}})
		sc.prom.tasks.WithLabelValues("eval").Inc()
	}
}

// remove ends s's stream with reason and forgets it as its rank's session.
// The tasks it holds stay with it: the caller re-issues them (reissue) or,
// once the job is over, leaves them.
func (sc *scheduler) remove(s *session, reason string) {
	s.gone = true
	s.abort(reason)
	if sc.sessions[s.rank] == s {
		delete(sc.sessions, s.rank)
	}
	sc.mon.removed(sc.now(), s, reason)
	sc.prom.executors.Set(float64(len(sc.sessions)))
	if len(sc.sessions) == 0 {
		sc.lastExecutor = sc.now()
	}
}

// reissue retires the tasks that the removed session s held and queues
// their work again, under new ids in the order of the old ones (unless
// another copy is still within its deadline), and logs the loss (reason,
// in round). Results for the old ids are rejected from then on.
func (sc *scheduler) reissue(s *session, reason string, round int) {
	var ids []int64
	for id := range s.busy {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var what []string
	for _, id := range ids {
		old := s.busy[id]
		sc.retire(old)
		if !old.work.pending() {
			sc.add(sc.again(old))
			what = append(what, old.what())
		}
	}
	s.busy = map[int64]*task{}
	sc.reissued += len(what)
	sc.prom.reissued.Add(float64(len(what)))
	sc.mon.reissued(sc.now(), s.rank, len(what), fmt.Sprintf("lost in round %d (%s)", round, reason))
	if len(what) > 0 {
		sc.log.Warnf("Executor %d lost (%s) in round %d; re-issuing %d task(s): %s", s.rank, reason, round, len(what), strings.Join(what, ", "))
	} else {
		sc.log.Warnf("Executor %d lost (%s)", s.rank, reason)
	}
}

// orphans takes out of the queue, and retires, the pinned tasks whose
// owner is not connected, and returns them in queue order. Only deployment
// pins tasks, so in simulation there are none. While no executor at all is
// connected nothing is an orphan: the job waits for executors (bounded by
// ExecutorWait) instead of rushing through empty rounds.
func (sc *scheduler) orphans() []*task {
	if len(sc.sessions) == 0 {
		return nil
	}
	var gone []*task
	rest := sc.queue[:0]
	for _, t := range sc.queue {
		if _, live := sc.tasks[t.id]; !live {
			continue
		}
		if t.owner == 0 || sc.sessions[t.owner] != nil {
			rest = append(rest, t)
			continue
		}
		sc.retire(t)
		gone = append(gone, t)
	}
	sc.queue = rest
	return gone
}

// lapse is a session to drop for silence, with the reason.
type lapse struct {
	s      *session
	reason string
}

// silent returns, in rank order, the sessions nothing has been received
// from for longer than ExecutorTimeout at now. A message still queued for
// the loop counts as heard (session.lastRecv), so a stalled loop does not
// drop executors that are alive.
func (sc *scheduler) silent(now time.Time) []lapse {
	var out []lapse
	for _, r := range sc.ranks() {
		s := sc.sessions[r]
		seen := s.lastSeen
		if r := time.Unix(0, s.lastRecv.Load()); r.After(seen) {
			seen = r
		}
		if silent := now.Sub(seen); silent > sc.opt.ExecutorTimeout {
			out = append(out, lapse{s, fmt.Sprintf("no heartbeat for %s", silent.Round(time.Millisecond))})
		}
	}
	return out
}

// overdue returns the error to fail the job with when executors stay away
// past ExecutorWait at now: none connected for that long, or, before the
// job is running (every rank registered and the model built), a rank that
// has not registered since opened. Otherwise nil; a running job with no
// executor for longer than ExecutorTimeout logs once, per absence, that
// round waits.
func (sc *scheduler) overdue(now, opened time.Time, running bool, round int) error {
	if len(sc.sessions) == 0 {
		idle := now.Sub(sc.lastExecutor)
		if idle > sc.opt.ExecutorWait {
			return fmt.Errorf("no executor connected for %s (waited for %d executor(s) at %s:%d)", idle.Round(time.Second), sc.opt.Executors, sc.conf.PsIP, sc.conf.PsPort)
		} else if running && !sc.warnedNoExecs && idle > sc.opt.ExecutorTimeout {
			sc.warnedNoExecs = true
			sc.log.Warnf("No executor is connected; round %d waits for one to rejoin (up to %s)", round, sc.opt.ExecutorWait)
		}
		return nil
	}
	if running {
		return nil
	}
	// The job starts once every rank has registered; one that never does
	// (it exited on bad data, say) must not leave the others waiting
	// forever.
	if waited := now.Sub(opened); waited > sc.opt.ExecutorWait {
		var missing []string
		for r := int32(1); r <= int32(sc.opt.Executors); r++ {
			if !sc.everSeen[r] {
				missing = append(missing, fmt.Sprint(r))
			}
		}
		return fmt.Errorf("executor(s) %s of %d never registered within %s (waited at %s:%d); check their logs",
			strings.Join(missing, ", "), sc.opt.Executors, waited.Round(time.Second), sc.conf.PsIP, sc.conf.PsPort)
	}
	return nil
}

// shutdown tells every connected executor that the job is over (reason;
// jobDone when it succeeded) and ends each stream once that is sent. The
// sessions stay until their streams close (closed) or abortAll.
func (sc *scheduler) shutdown(reason string, jobDone bool) {
	for _, r := range sc.ranks() {
		s := sc.sessions[r]
		s.send(&pb.AggregatorMessage{Body: &pb.AggregatorMessage_Shutdown{Shutdown: &pb.Shutdown{Reason: reason, JobDone: jobDone}}})
		s.close()
	}
}

// closed forgets s, whose stream ended, if it is still its rank's session.
func (sc *scheduler) closed(s *session) {
	if sc.sessions[s.rank] == s {
		delete(sc.sessions, s.rank)
	}
}

// abortAll ends every stream now with reason and forgets every session.
func (sc *scheduler) abortAll(reason string) {
	for _, r := range sc.ranks() {
		s := sc.sessions[r]
		s.gone = true
		s.abort(reason)
		delete(sc.sessions, r)
	}
}
