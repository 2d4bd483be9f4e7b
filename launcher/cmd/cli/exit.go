// Package cli is what the launcher and fsbuild commands share so that they
// behave alike: exit codes (one table, here), usage errors, the interrupt
// handling of main, the version subcommand and the -o flag's values.
//
// Exit codes:
//
//	0    success
//	1    any other failure (a build failed, a timeout ran out, ...)
//	2    usage: a bad flag, argument, flag value or job file; nothing was started
//	3    unreachable: the Docker engine, the Kubernetes API server (or its kubeconfig), the BuildKit daemon (fsbuild) could not be reached
//	4    job failed: a process of the job failed while the command waited on it
//	5    not found: no backend has the job
//	130  interrupted by SIGINT (Ctrl-C), 143 by SIGTERM: 128 + the signal's number, as a shell reports a killed command
package cli

import (
	"errors"
	"fmt"
)

// Exit codes; the package comment documents them, README.md repeats them.
const (
	ExitOK          = 0
	ExitFailure     = 1
	ExitUsage       = 2
	ExitUnreachable = 3
	ExitJobFailed   = 4
	ExitNotFound    = 5
	// ExitSignal plus the signal's number is the code of an interrupted command.
	ExitSignal = 128
)

// Error is an error with the exit code it should end the command with.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// WithCode gives err an exit code; nil stays nil. The outermost code wins.
func WithCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: code, Err: err}
}

// Usage marks err as the user's mistake in flags, arguments or input.
func Usage(err error) error { return WithCode(ExitUsage, err) }

// Usagef is Usage of a formatted error.
func Usagef(format string, args ...any) error { return Usage(fmt.Errorf(format, args...)) }

// Code is the exit code for err: its own, else ExitFailure (ExitOK for nil).
func Code(err error) int {
	if err == nil {
		return ExitOK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ExitFailure
}
