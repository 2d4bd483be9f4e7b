package backend

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
)

// ErrNotFound is returned (wrapped) by Stop, Status, Logs and Wait for a job
// the backend does not know.
var ErrNotFound = errors.New("no such job")

// NotFound wraps ErrNotFound with the job name and where it was looked for.
func NotFound(name, where string) error {
	return fmt.Errorf("job %q: %w on %s", name, ErrNotFound, where)
}

// ErrExists is returned (wrapped) by Submit when a job of that name exists.
var ErrExists = errors.New("a job with this name already exists")

// ProcessError is a job that failed, and the process that failed it.
type ProcessError struct {
	Job, Process string
	Where        string // the process's place: "container x", "pod y", "pid 1234"
	ExitCode     *int   // nil when the process left no exit code
	Message      string // how it ended: its exit and last error line
	Tail         string // the last lines of its output
}

func (e *ProcessError) Error() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "job %q: %s", e.Job, e.Process)
	if e.Where != "" {
		fmt.Fprintf(&sb, " (%s)", e.Where)
	}
	sb.WriteString(" failed")
	if e.Message != "" {
		sb.WriteString(": " + e.Message)
	}
	if t := strings.TrimRight(e.Tail, "\n"); t != "" {
		sb.WriteString("; last log lines:")
		for _, l := range strings.Split(t, "\n") {
			sb.WriteString("\n    " + l)
		}
	}
	return sb.String()
}

// ExitMessage says how a process exited: "exit code 1", "exit code 137
// (killed)", "exit code 1 (Error)". A code above 128 without a reason is
// named by its signal, as shells report it.
func ExitMessage(code int, reason string) string {
	msg := "exit code " + strconv.Itoa(code)
	if reason == "" && code > 128 && code < 128+65 {
		reason = syscall.Signal(code - 128).String()
	}
	if reason != "" {
		msg += " (" + reason + ")"
	}
	return msg
}

// ErrorLine is the last line of a process's output that reports an error:
// the runtime's commands end with "aggregator: ..." or "executor: ...",
// its logs mark errors ERROR, and Go prints "panic:" and "fatal error:".
// "" when there is none (a process killed from outside says nothing).
func ErrorLine(output string) string {
	lines := strings.Split(strings.TrimRight(output, "\n"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		for _, p := range []string{AggregatorProcess + ": ", "executor: ", "panic: ", "fatal error: "} {
			if strings.HasPrefix(l, p) {
				return l
			}
		}
		if strings.Contains(l, " ERROR ") {
			return l
		}
	}
	return ""
}
