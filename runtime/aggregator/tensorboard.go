package aggregator

// TensorBoard event files beside the aggregator's log, with the scalars
// FedScale's aggregator writes (its log_train_result and log_test_result)
// under the same tags, so `tensorboard --logdir` shows both side by side.

import (
	"math"

	"github.com/fedscale/fedscale-go/runtime/fedlog"
	"github.com/fedscale/fedscale-go/runtime/tfevents"
)

// eventsHost is the last part of the event file's name, where TensorBoard's
// writers put the host name: fixed, so that a run's files are named by its
// start time alone.
const eventsHost = "aggregator"

// FedScale's tags. The FAR/time_to_* ones are stepped by the virtual clock
// in whole minutes, as FedScale's writer truncates its step to an integer.
const (
	tagTrainLoss       = "Train/round_to_loss"
	tagTimeTrainLoss   = "FAR/time_to_train_loss (min)"
	tagRoundDuration   = "FAR/round_duration (min)"
	tagTestLoss        = "Test/round_to_loss"
	tagTestAccuracy    = "Test/round_to_accuracy"
	tagTimeTestLoss    = "FAR/time_to_test_loss (min)"
	tagTimeTestAcc     = "FAR/time_to_test_accuracy (min)"
	tagTestTop5        = "Test/round_to_top5_accuracy"        // ours: FedScale logs top-1 only
	tagParticipants    = "Train/round_to_participants"        // ours
	tagVirtualClockMin = "Train/round_to_virtual_clock (min)" // ours
)

// recordScalars are the scalars of one metrics record: those stepped by
// round and those stepped by the virtual clock's whole minutes.
// roundDuration is the round's virtual duration (seconds). Values the
// record lacks (not evaluated, or not finite) are left out.
func recordScalars(r fedlog.Record, roundDuration float64) (byRound, byClock []tfevents.Scalar) {
	if r.Loss != nil {
		byRound = append(byRound,
			tfevents.Scalar{Tag: tagTrainLoss, Value: *r.Loss},
			tfevents.Scalar{Tag: tagRoundDuration, Value: roundDuration / 60},
			tfevents.Scalar{Tag: tagParticipants, Value: float64(r.Participants)},
			tfevents.Scalar{Tag: tagVirtualClockMin, Value: r.VirtualClock / 60})
		byClock = append(byClock, tfevents.Scalar{Tag: tagTimeTrainLoss, Value: *r.Loss})
	}
	if r.TestLoss != nil {
		byRound = append(byRound, tfevents.Scalar{Tag: tagTestLoss, Value: *r.TestLoss})
		byClock = append(byClock, tfevents.Scalar{Tag: tagTimeTestLoss, Value: *r.TestLoss})
	}
	if r.Top1 != nil {
		byRound = append(byRound, tfevents.Scalar{Tag: tagTestAccuracy, Value: *r.Top1})
		byClock = append(byClock, tfevents.Scalar{Tag: tagTimeTestAcc, Value: *r.Top1})
	}
	if r.Top5 != nil {
		byRound = append(byRound, tfevents.Scalar{Tag: tagTestTop5, Value: *r.Top5})
	}
	return byRound, byClock
}

// openEvents creates the run's event file in the aggregator's log folder.
// Its times are the job's: the first run's start (this run's less the
// wall time of earlier runs) plus a record's wall_clock, so the file
// follows from metrics.jsonl and the start.
func (st *state) openEvents() error {
	w, err := tfevents.Create(st.aggregatorDir(), st.eventsEpoch(), eventsHost)
	if err != nil {
		return err
	}
	st.events = w
	return nil
}

// eventsEpoch is the job's start in Unix seconds.
func (st *state) eventsEpoch() int64 {
	return st.started.Unix() - int64(math.Round(st.wallOffset))
}

// writeEvents writes r's scalars; a failure is logged and the job goes on.
func (st *state) writeEvents(r fedlog.Record) {
	if st.events == nil {
		return
	}
	byRound, byClock := recordScalars(r, st.roundTime)
	wall := float64(st.eventsEpoch()) + r.WallClock
	err := st.events.Scalars(wall, int64(r.Round), byRound)
	if err == nil {
		err = st.events.Scalars(wall, int64(r.VirtualClock/60), byClock)
	}
	if err != nil {
		st.log.Errorf("%v", err)
	}
}
