package aggregator

// A finished job says so: the completion record a job that succeeded
// writes beside its checkpoint, and what an aggregator started again on
// that job does (reports the results, tells the executors that connect
// that the job is over, exits) instead of waiting for executors to train
// nothing.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fedscale/fedscale-go/runtime/fedlog"
	"github.com/fedscale/fedscale-go/runtime/inputfile"
	pb "github.com/fedscale/fedscale-go/runtime/proto/fedscalev1"
)

const (
	completionFormat = 1
	// maxCompletionBytes bounds the record's read: it is a few hundred
	// bytes.
	maxCompletionBytes = 64 << 10
	// DefaultFinishedGrace is how long an aggregator started on a finished
	// job waits for executors to tell them so (Options.FinishedGrace).
	DefaultFinishedGrace = 10 * time.Second
	// hangUpWait bounds how long an aggregator that is done waits for the
	// executors it told to hang up.
	hangUpWait = 5 * time.Second
)

// completion is the record of a job that finished, with its final
// results. It is written (atomically, with save_checkpoint) once the last
// round is evaluated and the final model saved, and removed when a run
// that will overwrite the checkpoint starts.
type completion struct {
	Format  int    `json:"format"`
	JobName string `json:"job_name"`
	// TimeStamp is the run that finished: its logs are under it.
	TimeStamp string `json:"time_stamp"`
	// Settings is settingsDigest: an aggregator started with other
	// settings (or more rounds) does not take the job as finished.
	Settings     string  `json:"settings"`
	Round        int     `json:"round"`
	VirtualClock float64 `json:"virtual_clock"`
	Top1         float64 `json:"top_1"`
	Top5         float64 `json:"top_5"`
	TestLoss     float64 `json:"test_loss"`
	MetricsFile  string  `json:"metrics_file"`
	ModelFile    string  `json:"model_file,omitempty"`
}

// completionPath is beside the checkpoint: per job, like it.
func (e *env) completionPath() string {
	return filepath.Join(filepath.Dir(e.checkpointPath()), "finished.json")
}

// settingsDigest digests what the job file decides of the model's
// trajectory: the job_conf keys config marks so and the initial model. It
// is the checkpoint fingerprint less the data, which only executors know,
// so that it can be checked before any executor connects.
func (st *state) settingsDigest() string {
	h := sha256.New()
	st.conf.WriteFingerprint(h)
	fmt.Fprintf(h, "init=%s", st.initDigest)
	return hex.EncodeToString(h.Sum(nil))
}

// finishedBefore returns the completion record of this job when it says
// the job is over as configured now: resuming, same settings, no more
// rounds asked for. Otherwise, when this run will write checkpoints, it
// removes the record, which would no longer describe them.
func (a *Aggregator) finishedBefore() (*completion, error) {
	path := a.completionPath()
	if a.opt.Resume {
		c, err := loadCompletion(path)
		if err != nil {
			return nil, err
		}
		switch {
		case c == nil:
		case c.JobName != a.conf.JobName || c.Settings != a.st.settingsDigest():
			a.log.Infof("Job %s finished round %d under other settings (%s); this run starts afresh", c.JobName, c.Round, path)
		case c.Round < a.conf.Rounds:
			a.log.Infof("Job %s finished round %d before; going on to round %d", c.JobName, c.Round, a.conf.Rounds)
		default:
			return c, nil
		}
	}
	if a.conf.SaveCheckpoint {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("completion record: %w", err)
		}
	}
	return nil, nil
}

// loadCompletion reads the record at path; nil when there is none.
func loadCompletion(path string) (*completion, error) {
	b, err := inputfile.Read(path, maxCompletionBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("completion record: %w", err)
	}
	c := &completion{}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("completion record %s is corrupt: %w; remove it to run the job again", path, err)
	}
	if c.Format != completionFormat {
		return nil, fmt.Errorf("completion record %s has format %d, want %d; remove it to run the job again", path, c.Format, completionFormat)
	}
	return c, nil
}

// recordCompletion writes the completion record of the job that just
// succeeded with res, when it keeps checkpoints and evaluated its last
// round in this run. A failure is logged; the job has finished anyway.
func (a *Aggregator) recordCompletion(res Result) {
	st := &a.st
	if !a.conf.SaveCheckpoint || st.last.Round != res.Rounds || st.last.Top1 == nil {
		return
	}
	c := completion{Format: completionFormat, JobName: a.conf.JobName, TimeStamp: st.timeStamp, Settings: st.settingsDigest(),
		Round: res.Rounds, VirtualClock: res.VirtualClock, Top1: res.Top1, Top5: res.Top5, TestLoss: res.TestLoss,
		MetricsFile: res.MetricsFile, ModelFile: res.ModelFile}
	b, err := json.MarshalIndent(c, "", "  ")
	if err == nil {
		err = writeAtomic(a.completionPath(), append(b, '\n'))
	}
	if err != nil {
		a.log.Errorf("Marking the job finished: %v", err)
		return
	}
	a.log.Infof("Marked job %s finished in %s", a.conf.JobName, a.completionPath())
}

// serveFinished reports a job that finished before and, for at most
// FinishedGrace, tells the executors that connect that it is over, with
// the Shutdown that ends every finished job, so that a launcher starting
// the whole job again sees every process exit 0. It returns as soon as
// every rank has been told and has hung up.
func (a *Aggregator) serveFinished(ctx context.Context, c *completion) (Result, error) {
	// The job document shows the finished job, its last round's figures
	// as its history.
	st := &a.st
	st.round, st.clock, st.timeStamp, st.done = c.Round, c.VirtualClock, c.TimeStamp, true
	a.mon.recorded(a.now(), fedlog.Record{Round: c.Round, VirtualClock: c.VirtualClock, Top1: &c.Top1, Top5: &c.Top5,
		TestLoss: (&fedlog.Record{}).Value("test_loss", c.TestLoss)})
	a.mon.publish(st, "")
	close(a.ready)
	a.log.Infof("Job %s already finished (run %s): round %d, virtual clock %s, top_1 %s, top_5 %s; metrics in %s; checkpoint in %s. Nothing to train (a start without resuming runs it again): telling executors that connect within %s, then exiting",
		c.JobName, c.TimeStamp, c.Round, fedlog.PyFloat(c.VirtualClock), fedlog.PyFloat(c.Top1), fedlog.PyFloat(c.Top5), c.MetricsFile,
		filepath.Dir(a.completionPath()), a.opt.FinishedGrace)
	res := Result{Rounds: c.Round, VirtualClock: c.VirtualClock, Top1: c.Top1, Top5: c.Top5, TestLoss: c.TestLoss, ResumedAt: c.Round,
		LogDir: a.logDir, MetricsFile: c.MetricsFile, ModelFile: c.ModelFile}
	told := newTold(fmt.Sprintf("job %s had already finished at round %d (top_1 %s); nothing left to run", c.JobName, c.Round, fedlog.PyFloat(c.Top1)), true)
	window := time.NewTimer(a.opt.FinishedGrace)
	defer window.Stop()
	var last <-chan time.Time // set once no more executors are expected
	for last == nil || len(told.open) > 0 {
		if last == nil && len(told.ranks) == a.opt.Executors {
			last = time.After(hangUpWait)
		}
		select {
		case <-ctx.Done():
			told.abort("aggregator stopped")
			return res, nil
		case ev := <-a.events:
			told.apply(ev, a.conf.JobName, a.opt.Executors)
		case <-window.C:
			if last == nil {
				last = time.After(hangUpWait)
			}
		case <-last:
			told.abort("aggregator stopped")
			return res, nil
		}
	}
	return res, nil
}

// told answers the Hellos that arrive once the job is over with the
// Shutdown connected executors get, and follows those streams until they
// close.
type told struct {
	shutdown *pb.AggregatorMessage
	open     map[*session]bool
	ranks    map[int32]bool
}

func newTold(reason string, jobDone bool) *told {
	return &told{
		shutdown: &pb.AggregatorMessage{Body: &pb.AggregatorMessage_Shutdown{Shutdown: &pb.Shutdown{Reason: reason, JobDone: jobDone}}},
		open:     map[*session]bool{},
		ranks:    map[int32]bool{},
	}
}

// apply handles a Hello (told, when it is for this job) or the close of a
// told stream; other events are dropped: the job is over.
func (t *told) apply(ev event, job string, executors int) {
	switch e := ev.(type) {
	case evHello:
		if h := e.hello; h.GetJobName() != job {
			e.reply <- status.Errorf(codes.FailedPrecondition, "executor belongs to job %q, this aggregator runs job %q", h.GetJobName(), job)
			return
		}
		e.s.send(t.shutdown)
		e.s.close()
		t.open[e.s] = true
		if r := e.hello.GetRank(); r >= 1 && int(r) <= executors {
			t.ranks[r] = true
		}
		e.reply <- nil
	case evClosed:
		delete(t.open, e.s)
	}
}

// abort ends the told streams still open.
func (t *told) abort(reason string) {
	for s := range t.open {
		s.abort(reason)
		delete(t.open, s)
	}
}
