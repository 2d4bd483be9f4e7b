package fedscalev1

import "time"

// MaxHeartbeatInterval bounds Welcome's heartbeat interval: an aggregator
// refuses to start with a longer one, an executor refuses a Welcome that
// carries one (or one under a millisecond).
const MaxHeartbeatInterval = 10 * time.Minute

// SilenceLimit is how long an executor waits on a welcomed session
// without a single message from the aggregator before it drops the
// connection: ten heartbeat intervals (as the aggregator's default
// --executor-timeout gives its executors), never under 2 s (one message
// can be a 1 MiB model chunk on a slow link) nor over 30 min. The
// aggregator sends a HeartbeatAck on every session that had nothing else
// to send for an interval, so only a dead, frozen or hostile aggregator
// stays silent that long.
func SilenceLimit(heartbeat time.Duration) time.Duration {
	const lo, hi = 2 * time.Second, 30 * time.Minute
	if heartbeat >= hi/10 {
		return hi
	}
	return max(10*heartbeat, lo)
}
