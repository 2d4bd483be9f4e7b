package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/fedscale/fedscale-go/runtime/version"
)

// testRoot is a command tree like the launcher's: a parent without RunE,
// a child that fails as told, one that waits for its context.
func testRoot(stdout *bytes.Buffer, fail error, started chan<- struct{}) *cobra.Command {
	root := &cobra.Command{Use: "tool", SilenceUsage: true, SilenceErrors: true}
	root.SetOut(stdout)
	root.SetErr(stdout)
	var n int
	do := &cobra.Command{Use: "do", Args: cobra.ExactArgs(1), RunE: func(*cobra.Command, []string) error { return fail }}
	do.Flags().IntVar(&n, "n", 0, "a number")
	wait := &cobra.Command{Use: "wait", RunE: func(cmd *cobra.Command, _ []string) error {
		close(started)
		<-cmd.Context().Done()
		return cmd.Context().Err()
	}}
	root.AddCommand(do, wait, VersionCommand("tool", stdout))
	return root
}

func TestRunExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		fail error
		code int
		want string
	}{
		{"success", []string{"do", "x"}, nil, ExitOK, ""},
		{"plain failure", []string{"do", "x"}, errors.New("boom"), ExitFailure, "tool: boom"},
		{"coded failure", []string{"do", "x"}, WithCode(ExitUnreachable, errors.New("no engine")), ExitUnreachable, "tool: no engine"},
		{"wrapped code", []string{"do", "x"}, fmt.Errorf("submit: %w", WithCode(ExitJobFailed, errors.New("executor-1 failed"))), ExitJobFailed, "submit: executor-1 failed"},
		{"usage from RunE", []string{"do", "x"}, Usagef("-o %q: want json", "xml"), ExitUsage, "Run 'tool do --help' for usage."},
		{"unknown command", []string{"od"}, nil, ExitUsage, `unknown command "od" for "tool"`},
		{"unknown flag", []string{"do", "x", "--m", "1"}, nil, ExitUsage, "unknown flag: --m"},
		{"bad flag value", []string{"do", "x", "--n", "one"}, nil, ExitUsage, `invalid argument "one" for "--n"`},
		{"wrong arguments", []string{"do"}, nil, ExitUsage, "accepts 1 arg(s), received 0"},
		{"bad -o", []string{"version", "-o", "xml"}, nil, ExitUsage, `-o "xml": want json or yaml`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Run(context.Background(), testRoot(&out, tc.fail, nil), tc.args, &errOut, nil, nil)
			if code != tc.code || !strings.Contains(errOut.String(), tc.want) {
				t.Errorf("code %d, stderr %q; want %d and %q", code, errOut.String(), tc.code, tc.want)
			}
			if tc.code == ExitOK && errOut.Len() > 0 {
				t.Errorf("stderr on success: %q", errOut.String())
			}
		})
	}
}

func TestRunInterrupted(t *testing.T) {
	for _, tc := range []struct {
		sig  os.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			var out, errOut bytes.Buffer
			sigs := make(chan os.Signal, 1)
			started := make(chan struct{})
			released := false
			go func() {
				<-started
				sigs <- tc.sig
			}()
			done := make(chan int)
			go func() {
				done <- Run(context.Background(), testRoot(&out, nil, started), []string{"wait"}, &errOut, sigs, func() { released = true })
			}()
			select {
			case code := <-done:
				if code != tc.code || !released || !strings.Contains(errOut.String(), "interrupted by") {
					t.Errorf("code %d, released %v, stderr %q; want %d", code, released, errOut.String(), tc.code)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the signal did not end the command")
			}
		})
	}
}

func TestVersion(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		check func(string) error
	}{
		{[]string{"version"}, func(s string) error {
			for _, w := range []string{"Version:", "Commit:", "Go version:", "Platform:", version.Get().Platform} {
				if !strings.Contains(s, w) {
					return fmt.Errorf("lacks %q", w)
				}
			}
			return nil
		}},
		{[]string{"version", "-o", "json"}, func(s string) error {
			var i version.Info
			dec := json.NewDecoder(strings.NewReader(s))
			if err := dec.Decode(&i); err != nil {
				return err
			}
			if dec.More() || i != version.Get() {
				return fmt.Errorf("want exactly one object equal to %+v", version.Get())
			}
			return nil
		}},
		{[]string{"version", "-o", "yaml"}, func(s string) error {
			if !strings.Contains(s, "goVersion: go") {
				return errors.New("no goVersion")
			}
			return nil
		}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := Run(context.Background(), testRoot(&out, nil, nil), tc.args, &errOut, nil, nil); code != 0 {
				t.Fatalf("code %d: %s", code, errOut.String())
			}
			if err := tc.check(out.String()); err != nil {
				t.Errorf("%v:\n%s", err, out.String())
			}
		})
	}
}

func TestOneOf(t *testing.T) {
	for _, tc := range []struct {
		value   string
		allowed []string
		want    string
	}{
		{"json", []string{"table", "json"}, ""},
		{"", []string{"", "json"}, ""},
		{"xml", []string{"table", "json", "yaml"}, `-o "xml": want table, json or yaml`},
		{"xml", []string{"", "json", "yaml"}, `-o "xml": want json or yaml`},
		{"xml", []string{"json"}, `-o "xml": want json`},
	} {
		err := OneOf("-o", tc.value, tc.allowed...)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || err.Error() != tc.want || Code(err) != ExitUsage) {
			t.Errorf("OneOf(%q, %v) = %v, want %q", tc.value, tc.allowed, err, tc.want)
		}
	}
}

func TestCompleteOutput(t *testing.T) {
	var out bytes.Buffer
	root := testRoot(&out, nil, nil)
	if code := Run(context.Background(), root, []string{"__complete", "version", "-o", ""}, &out, nil, nil); code != 0 {
		t.Fatalf("code %d: %s", code, out.String())
	}
	if got := out.String(); !strings.HasPrefix(got, "json\nyaml\n:4\n") {
		t.Errorf("completion of -o:\n%s", got)
	}
}
