// Package trace reads FedScale's device traces and answers the two questions
// the simulator asks of them: how fast is a client, and is it online at a
// given virtual time.
//
// FedScale ships two traces as pickled Python dicts keyed by client id:
//
//   - client_device_capacity: {id: {'computation': ms per sample, 'communication': kbit/s}}
//   - client_behave_trace:    {id: {'duration', 'inactive', 'finish_time', 'active', 'model'}}
//
// Both are accepted as the original pickle files (protocols 0 to 5) and as
// JSON of the same shape (an object keyed by the client id as a string); the
// format is detected from the content, not the file name. Loading validates
// every entry and names the file and the client key at fault.
//
// Entries are returned ordered by ascending client key; client k of a job uses
// entry k mod len(entries), so a trace shorter than the client population
// wraps around. Selecting clients from these traces is package selection's job.
package trace

import (
	"fmt"
	"math"
	"sort"

	"github.com/fedscale/fedscale-go/runtime/inputfile"
)

// Capacity is one device's speed.
type Capacity struct {
	// Computation is the time to process one sample, in milliseconds.
	Computation float64
	// Communication is the network bandwidth, in kbit/s.
	Communication float64
}

// DefaultCapacity is used when a job has no capacity trace: every client gets
// the same speed, so selection among equals is decided by the random draw.
//
// The values describe a mid-range phone on a typical mobile link: 20 ms per
// sample and 10 Mbit/s. They are a documented choice, not taken from the
// trace. FedScale itself falls back to {computation: 1, communication: 1},
// which is not copied: 1 kbit/s makes moving a 10 MB model take about a day of
// virtual time.
var DefaultCapacity = Capacity{Computation: 20, Communication: 10_000}

// Validate reports whether c can be used to compute completion times:
// computation must be finite and >= 0, communication finite and > 0.
func (c Capacity) Validate() error {
	if math.IsNaN(c.Computation) || math.IsInf(c.Computation, 0) || c.Computation < 0 {
		return fmt.Errorf("'computation' must be a finite number >= 0 (ms per sample), got %v", c.Computation)
	}
	if math.IsNaN(c.Communication) || math.IsInf(c.Communication, 0) || c.Communication <= 0 {
		return fmt.Errorf("'communication' must be a finite number > 0 (kbit/s), got %v", c.Communication)
	}
	return nil
}

// CompletionTime returns the simulated time, in seconds, that a client of
// capacity c needs for one task, the way FedScale computes it: the backward
// pass costs about twice the forward one, hence
//
//	compute = 3 * batchSize * localSteps * c.Computation / 1000
//	comm    = 2 * modelKbit / c.Communication, modelKbit = modelBytes * 8 / 1000
//
// (the model is downloaded and its update uploaded). A capacity that fails
// Validate gives meaningless but non-panicking results (for example +Inf).
func CompletionTime(c Capacity, batchSize, localSteps int, modelBytes int64) (compute, comm float64) {
	compute = 3 * float64(batchSize) * float64(localSteps) * c.Computation / 1000
	modelKbit := float64(modelBytes) * 8 / 1000
	comm = 2 * modelKbit / c.Communication
	return compute, comm
}

// Behavior is one device's availability pattern. The pattern repeats every
// FinishTime seconds; within a cycle the device is online during each closed
// interval [Active[i], Inactive[i]].
type Behavior struct {
	// Duration is how long, in seconds, the device was observed. It is kept
	// for reference only; availability depends on FinishTime and the
	// intervals.
	Duration int64
	// FinishTime is the cycle length in seconds; 0 means always online.
	FinishTime int64
	// Active and Inactive hold the start and end of each online interval,
	// in seconds since the start of the cycle, sorted and not overlapping.
	Active, Inactive []int64
	// Model is the device model name from the trace, for reference.
	Model string
}

// Validate reports whether b is usable by Online: durations are not
// negative, both interval lists have the same length, and the intervals are
// sorted and do not overlap (Active[i] <= Inactive[i] <= Active[i+1]).
// Empty lists are valid and mean the device is never online.
func (b *Behavior) Validate() error {
	if b.Duration < 0 {
		return fmt.Errorf("'duration' must be >= 0, got %d", b.Duration)
	}
	if b.FinishTime < 0 {
		return fmt.Errorf("'finish_time' must be >= 0, got %d", b.FinishTime)
	}
	if len(b.Active) != len(b.Inactive) {
		return fmt.Errorf("'active' has %d entries but 'inactive' has %d", len(b.Active), len(b.Inactive))
	}
	for i := range b.Active {
		if b.Active[i] > b.Inactive[i] {
			return fmt.Errorf("interval %d ends before it starts: active %d > inactive %d", i, b.Active[i], b.Inactive[i])
		}
		if i > 0 && b.Active[i] < b.Inactive[i-1] {
			return fmt.Errorf("intervals not sorted: interval %d starts at %d, before interval %d ends at %d",
				i, b.Active[i], i-1, b.Inactive[i-1])
		}
	}
	return nil
}

// Online reports whether the device is online at virtual time t (seconds):
// with n = t mod FinishTime (taken as non-negative, as Python's % does), it is
// online when some i has Active[i] <= n <= Inactive[i]. FinishTime <= 0 means
// always online; a NaN or infinite t is never online.
//
// The intervals are searched by bisection, so the answer is only meaningful
// for a Behavior that passes Validate (as every loaded one does).
func (b *Behavior) Online(t float64) bool {
	if b.FinishTime <= 0 {
		return true
	}
	period := float64(b.FinishTime)
	n := math.Mod(t, period)
	if n < 0 {
		n += period
	}
	if math.IsNaN(n) {
		return false
	}
	// The last interval that starts at or before n is the only candidate,
	// since intervals are sorted and disjoint.
	i := sort.Search(len(b.Active), func(i int) bool { return float64(b.Active[i]) > n }) - 1
	if i < 0 || i >= len(b.Inactive) {
		return false
	}
	return n <= float64(b.Inactive[i])
}

// MaxFileBytes bounds a trace file, pickle or JSON. FedScale's traces
// are tens of MB (about 500,000 clients); the bound allows ten times
// that and keeps a device or FIFO named by mistake from being read
// without end.
const MaxFileBytes = 1 << 30

// LoadCapacities reads a client_device_capacity trace (pickle or JSON) of
// at most MaxFileBytes.
func LoadCapacities(path string) ([]Capacity, error) {
	data, err := inputfile.Read(path, MaxFileBytes)
	if err != nil {
		return nil, fmt.Errorf("trace: capacity trace: %w", err)
	}
	return ParseCapacities(data, path)
}

// LoadBehaviors reads a client_behave_trace (pickle or JSON) of at most
// MaxFileBytes.
func LoadBehaviors(path string) ([]Behavior, error) {
	data, err := inputfile.Read(path, MaxFileBytes)
	if err != nil {
		return nil, fmt.Errorf("trace: behavior trace: %w", err)
	}
	return ParseBehaviors(data, path)
}

// ParseCapacities decodes a capacity trace held in memory; name identifies it
// in errors. Entries are ordered by ascending client key.
func ParseCapacities(data []byte, name string) ([]Capacity, error) {
	return parse(data, name, capacityFrom)
}

// ParseBehaviors decodes a behavior trace held in memory; name identifies it
// in errors. Entries are ordered by ascending client key.
func ParseBehaviors(data []byte, name string) ([]Behavior, error) {
	return parse(data, name, behaviorFrom)
}
