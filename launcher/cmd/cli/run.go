package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Main runs root with the process's arguments and exits with its code.
func Main(root *cobra.Command) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	code := Run(context.Background(), root, os.Args[1:], os.Stderr, sigs, func() { signal.Reset(os.Interrupt, syscall.SIGTERM) })
	os.Exit(code)
}

// interrupted is the cancel cause of a command's context after a signal.
type interrupted struct{ sig os.Signal }

func (i interrupted) Error() string { return "interrupted by " + i.sig.String() }

// Run executes root with args and returns the exit code. The first signal
// from sigs cancels the command's context (a wait or a follow ends, what
// it started stays) and calls release, which should restore the signals'
// default action, so a second Ctrl-C kills at once. Errors print as
// "NAME: message" on stderr; a usage error adds where help is.
//
// An error from a command that never reached its RunE (an unknown command
// or flag, a bad flag value, a wrong number of arguments) is a usage error;
// a RunE marks its own errors with WithCode.
func Run(ctx context.Context, root *cobra.Command, args []string, stderr io.Writer, sigs <-chan os.Signal, release func()) int {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case s := <-sigs:
			if release != nil {
				release()
			}
			cancel(interrupted{s})
		case <-ctx.Done():
		}
	}()
	ran := false
	markRuns(root, &ran)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if i, ok := context.Cause(ctx).(interrupted); ok {
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", root.Name(), err)
		}
		fmt.Fprintf(stderr, "%s: %v\n", root.Name(), i)
		if s, ok := i.sig.(syscall.Signal); ok {
			return ExitSignal + int(s)
		}
		return ExitSignal + int(syscall.SIGINT)
	}
	if err == nil {
		return ExitOK
	}
	if !ran {
		err = Usage(err)
	}
	fmt.Fprintf(stderr, "%s: %v\n", root.Name(), err)
	code := Code(err)
	if code == ExitUsage && cmd != nil {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// markRuns wraps every RunE under root so that ran says whether one began:
// errors before that are cobra's own, about flags and arguments.
func markRuns(root *cobra.Command, ran *bool) {
	if f := root.RunE; f != nil {
		root.RunE = func(cmd *cobra.Command, args []string) error {
			*ran = true
			return f(cmd, args)
		}
	}
	for _, c := range root.Commands() {
		markRuns(c, ran)
	}
}
