package aggregator

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fedscale/fedscale-go/runtime/mtls"
	pb "github.com/fedscale/fedscale-go/runtime/proto/fedscalev1"
)

// session is one executor's Session stream. The event loop owns every field
// below the mutex-guarded outbox; the stream handler goroutine only drains
// the outbox and forwards what it receives to the loop.
type session struct {
	rank        int32
	incarnation string
	slots       int

	// Loop-owned state.
	busy         map[int64]*task
	modelVersion int64 // newest model version sent on this stream; -1 none
	lastSeen     time.Time
	// lastRecv is when the receive goroutine last got a message (unix
	// nanoseconds). Liveness reads it too, so a stalled event loop (a long
	// aggregation or checkpoint) does not drop executors whose heartbeats
	// are still queued behind it.
	lastRecv atomic.Int64
	// heartbeatSeq is the newest Heartbeat seq read, which the send
	// goroutine's HeartbeatAck carries.
	heartbeatSeq atomic.Int64
	gone         bool
	// strikes counts the tasks in a row it failed and the deadlines it
	// missed (see scheduler.failed, missed); struckAt is when a deadline
	// last struck; progress is when its last accepted result arrived.
	strikes  int
	struckAt time.Time
	progress time.Time

	// The outbox is unbounded so the event loop never blocks on a slow
	// executor; liveness checks catch an executor that stops reading.
	mu      sync.Mutex
	queue   []*pb.AggregatorMessage
	closing bool // drain the queue, then end the stream cleanly
	notify  chan struct{}
	killed  chan struct{} // closed to end the stream with an error
	kill    sync.Once
	reason  string
}

// newSession is the session of h, whose slots checkHello has bounded.
func newSession(h *pb.Hello, now time.Time) *session {
	return &session{
		rank:         h.GetRank(),
		incarnation:  h.GetIncarnation(),
		slots:        int(h.GetSlots()),
		busy:         map[int64]*task{},
		modelVersion: -1,
		lastSeen:     now,
		notify:       make(chan struct{}, 1),
		killed:       make(chan struct{}),
	}
}

func (s *session) free() int { return s.slots - len(s.busy) }

// workingOn is when s started on t, as far as the aggregator can tell:
// when t was assigned, or when s's last accepted result arrived if that
// is later (tasks queued behind others are not charged for the wait).
func (s *session) workingOn(t *task) time.Time {
	if s.progress.After(t.assignedAt) {
		return s.progress
	}
	return t.assignedAt
}

// checkHello bounds what a Hello claims about the process before anything
// is kept or logged: its slots and the length and characters of its
// incarnation.
func checkHello(h *pb.Hello) error {
	if n := h.GetSlots(); n < 1 || n > pb.MaxSlots {
		return status.Errorf(codes.InvalidArgument, "Hello: slots %d is outside 1..%d", n, pb.MaxSlots)
	}
	inc := h.GetIncarnation()
	if len(inc) > pb.MaxIncarnationBytes {
		return status.Errorf(codes.InvalidArgument, "Hello: incarnation of %d bytes, at most %d", len(inc), pb.MaxIncarnationBytes)
	}
	for _, c := range []byte(inc) {
		if c < 0x21 || c > 0x7e {
			return status.Errorf(codes.InvalidArgument, "Hello: incarnation %q has a character that is not printable ASCII", inc)
		}
	}
	return nil
}

// send queues m for the executor without blocking.
func (s *session) send(m *pb.AggregatorMessage) {
	s.mu.Lock()
	s.queue = append(s.queue, m)
	s.mu.Unlock()
	s.poke()
}

// close ends the stream once every queued message has been sent.
func (s *session) close() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.poke()
}

// abort ends the stream now, with reason as the status message.
func (s *session) abort(reason string) {
	s.kill.Do(func() {
		s.mu.Lock()
		s.reason = reason
		s.mu.Unlock()
		close(s.killed)
	})
}

// abortReason is the reason abort ended the stream with, "" if it did not.
func (s *session) abortReason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason
}

func (s *session) poke() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *session) take() (msgs []*pb.AggregatorMessage, closing bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	msgs, s.queue = s.queue, nil
	return msgs, s.closing
}

// recvHello waits for a session's first message for at most
// HelloTimeout. Returning ends the stream, which ends the Recv left behind.
func (a *Aggregator) recvHello(stream pb.Aggregator_SessionServer) (*pb.ExecutorMessage, error) {
	type recv struct {
		m   *pb.ExecutorMessage
		err error
	}
	c := make(chan recv, 1)
	go func() {
		m, err := stream.Recv()
		c <- recv{m, err}
	}()
	t := time.NewTimer(a.opt.HelloTimeout)
	defer t.Stop()
	select {
	case r := <-c:
		return r.m, r.err
	case <-t.C:
		return nil, status.Errorf(codes.DeadlineExceeded, "no Hello within %s", a.opt.HelloTimeout)
	}
}

// Session implements the gRPC service: one call per executor connection.
func (a *Aggregator) Session(stream pb.Aggregator_SessionServer) error {
	first, err := a.recvHello(stream)
	if err != nil {
		return err
	}
	hello := first.GetHello()
	if hello == nil {
		return status.Error(codes.InvalidArgument, "the first message of a session must be Hello")
	}
	// On a TLS connection the client certificate names the one rank its
	// holder may serve: a Hello for another rank is an impersonation.
	if rank, ok, err := mtls.PeerRank(stream.Context()); err != nil {
		return status.Errorf(codes.Unauthenticated, "client certificate: %v", err)
	} else if ok && int64(rank) != int64(hello.GetRank()) {
		a.log.Warnf("Refused a Hello for executor %d from the holder of rank %d's certificate", hello.GetRank(), rank)
		return status.Errorf(codes.PermissionDenied, "this certificate is issued to rank %d, not %d", rank, hello.GetRank())
	}
	if v := hello.GetProtocolVersion(); v != pb.ProtocolVersion {
		return status.Errorf(codes.FailedPrecondition,
			"executor speaks protocol version %d, this aggregator speaks version %d: run matching builds", v, pb.ProtocolVersion)
	}
	if err := checkHello(hello); err != nil {
		return err
	}
	// Here as well as in the loop: after the job's end the loop no longer
	// answers, and an evicted rank must still hear why it is refused.
	if err := a.bans.refused(hello.GetRank()); err != nil {
		return err
	}
	s := newSession(hello, a.now())
	reply := make(chan error, 1)
	if !a.post(evHello{s: s, hello: hello, reply: reply}) {
		return status.Error(codes.Unavailable, "aggregator is shutting down")
	}
	select {
	case err := <-reply:
		if err != nil {
			return err
		}
	case <-a.stopped:
		return status.Error(codes.Unavailable, "aggregator is shutting down")
	}

	recvErr := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			s.lastRecv.Store(a.now().UnixNano())
			if hb := m.GetHeartbeat(); hb != nil {
				s.heartbeatSeq.Store(hb.GetSeq())
			}
			if !a.post(evMessage{s: s, m: m}) {
				recvErr <- io.EOF
				return
			}
		}
	}()
	// Sends run on their own goroutine: a Send blocked on flow control (an
	// executor that stopped reading) must not keep this handler from
	// returning when the session is dropped or the loop stops. Returning
	// ends the stream, which unblocks that Send. A heartbeat interval
	// with nothing to send gets a HeartbeatAck, independent of the event
	// loop (a long aggregation must not look like a dead aggregator): the
	// executor's bound on silence (pb.SilenceLimit) counts on it.
	sendErr := make(chan error, 1)
	drained := make(chan struct{})
	go func() {
		tick := time.NewTicker(a.opt.HeartbeatInterval)
		defer tick.Stop()
		quiet := true // nothing sent since the last tick
		// No ack goes before the Welcome, which the loop queued before
		// this goroutine starts: an executor takes a first message other
		// than Welcome for a refusal, and the select below picks at random
		// when a tick is due too (this goroutine delayed past a heartbeat
		// interval on a loaded machine).
		welcomed := false
		for {
			select {
			case <-s.notify:
			case <-tick.C:
				if quiet && welcomed {
					ack := &pb.AggregatorMessage{Body: &pb.AggregatorMessage_HeartbeatAck{HeartbeatAck: &pb.HeartbeatAck{Seq: s.heartbeatSeq.Load()}}}
					if err := stream.Send(ack); err != nil {
						sendErr <- err
						return
					}
				}
				quiet = true
				continue
			case <-stream.Context().Done():
				return
			}
			msgs, closing := s.take()
			quiet = quiet && len(msgs) == 0
			welcomed = welcomed || len(msgs) > 0
			for _, m := range msgs {
				if err := stream.Send(m); err != nil {
					sendErr <- err
					return
				}
			}
			if closing {
				close(drained)
				return
			}
		}
	}()
	select {
	case err := <-sendErr:
		a.post(evClosed{s: s, err: err})
		return err
	case <-drained:
		// Keep the stream open until the executor hangs up, so the
		// last messages are not cut off by a reset.
		select {
		case <-recvErr:
		case <-time.After(5 * time.Second):
		}
		a.post(evClosed{s: s, err: nil})
		return nil
	case err := <-recvErr:
		if errors.Is(err, io.EOF) {
			err = nil
		}
		a.post(evClosed{s: s, err: err})
		return nil
	case <-s.killed:
		s.mu.Lock()
		reason := s.reason
		s.mu.Unlock()
		return status.Error(codes.Aborted, reason)
	case <-a.stopped:
		return status.Error(codes.Unavailable, "aggregator stopped")
	}
}
