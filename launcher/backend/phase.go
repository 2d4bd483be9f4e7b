package backend

import (
	"fmt"
	"strconv"
	"strings"
)

// Summarize sets the job's phase and conditions from its processes, by the
// runtime's rules: the aggregator decides the job (it ends it, and re-issues
// the tasks of an executor it lost), so
//
//   - the job succeeded when the aggregator did, and failed when it failed;
//   - an executor that died (failed, or failed and restarted) while the
//     aggregator carries on makes the job Degraded, not Failed;
//   - the job failed when every executor failed before the aggregator ended
//     (none is left to train);
//   - otherwise it runs when the aggregator and every executor still alive
//     run, and is pending before that.
func Summarize(st Status) Status {
	st.Conditions = nil
	if len(st.Processes) == 0 {
		st.Phase = Unknown
		return st
	}
	var agg *ProcessStatus
	executors, failed, live := 0, 0, 0
	allRunning := true
	var died []string
	for i := range st.Processes {
		p := &st.Processes[i]
		if p.Name == AggregatorProcess {
			agg = p
			continue
		}
		executors++
		switch p.Phase {
		case Failed:
			failed++
		case Succeeded:
		default:
			live++
			allRunning = allRunning && p.Phase == Running
		}
		if hasDied(*p) {
			died = append(died, p.Name+" ("+deathOf(*p)+")")
		}
	}
	switch {
	case agg == nil:
		st.Phase = Unknown
	case agg.Phase == Failed:
		st.Phase = Failed
	case agg.Phase == Succeeded:
		st.Phase = Succeeded
	case executors > 0 && failed == executors:
		st.Phase = Failed
	case agg.Phase == Running && allRunning:
		st.Phase = Running
	default:
		st.Phase = Pending
	}
	if len(died) > 0 && st.Phase != Failed {
		st.Conditions = append(st.Conditions, Condition{Type: Degraded, Message: degradedMessage(died)})
	}
	return st
}

// hasDied: an executor that failed, for good or before a restart.
func hasDied(p ProcessStatus) bool {
	return p.Phase == Failed || p.Restarts > 0 || p.ExitCode != nil && *p.ExitCode != 0
}

// maxNamed bounds how many processes one message names (a job may have
// hundreds of executors).
const maxNamed = 3

func degradedMessage(died []string) string {
	if len(died) == 1 {
		return died[0] + " died; the aggregator carried on without it"
	}
	msg := strings.Join(died[:min(len(died), maxNamed)], ", ")
	if len(died) > maxNamed {
		msg += " and " + strconv.Itoa(len(died)-maxNamed) + " more"
	}
	return strconv.Itoa(len(died)) + " executors died; the aggregator carried on without them: " + msg
}

// deathOf says briefly how a process died.
func deathOf(p ProcessStatus) string {
	switch {
	case p.Message != "":
		return strings.TrimSpace(strings.ReplaceAll(p.Message, "\n", " "))
	case p.Restarts > 0:
		if p.Restarts == 1 {
			return "restarted once"
		}
		return "restarted " + strconv.Itoa(p.Restarts) + " times"
	case p.ExitCode != nil:
		return ExitMessage(*p.ExitCode, "")
	}
	return strings.ToLower(string(p.Phase))
}

// failing is the process that failed the job: the aggregator, else the
// first executor that failed.
func failing(st Status) (ProcessStatus, bool) {
	for _, p := range st.Processes {
		if p.Name == AggregatorProcess && p.Phase == Failed {
			return p, true
		}
	}
	for _, p := range st.Processes {
		if p.Phase == Failed {
			return p, true
		}
	}
	return ProcessStatus{}, false
}

// allReady: every process that still counts runs and is ready (a failed
// executor no longer counts; a finished process is done being ready).
func allReady(st Status) bool {
	for _, p := range st.Processes {
		if p.Phase != Succeeded && p.Phase != Failed && !(p.Phase == Running && p.Ready) {
			return false
		}
	}
	return true
}

// anyLive: some process has not ended.
func anyLive(st Status) bool {
	for _, p := range st.Processes {
		if p.Phase == Running || p.Phase == Pending {
			return true
		}
	}
	return false
}

// Describe summarises a status for a message: the phase, how many
// processes run and wait, and the first process that holds things up.
func Describe(st Status) string {
	counts := map[Phase]int{}
	var first string
	for _, p := range st.Processes {
		counts[p.Phase]++
		if first == "" && p.Phase != Succeeded && p.Phase != Failed && !(p.Phase == Running && p.Ready) {
			first = p.Name + " " + strings.ToLower(string(p.Phase))
			if p.Phase == Running {
				first += ", not ready"
			}
			if p.Message != "" {
				first += ": " + p.Message
			}
		}
	}
	phase := st.Phase
	if phase == "" {
		phase = Unknown
	}
	out := fmt.Sprintf("phase %s: %d running, %d pending", phase, counts[Running], counts[Pending])
	if counts[Failed] > 0 {
		out += fmt.Sprintf(", %d failed", counts[Failed])
	}
	if first != "" {
		out += "; " + first
	}
	return out
}

// ProcessRange names a job's processes briefly: "aggregator and
// executor-1..3".
func ProcessRange(names []string) string {
	if len(names) <= 3 {
		return strings.Join(names, ", ")
	}
	return names[0] + " and " + names[1] + ".." + strings.TrimPrefix(names[len(names)-1], "executor-")
}
