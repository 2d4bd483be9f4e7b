package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/fedscale/fedscale-go/builder/build"
	"github.com/fedscale/fedscale-go/launcher/cmd/cli"
)

// runCode runs fsbuild as main does and returns its exit code and output.
func runCode(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := cli.Run(context.Background(), newCommand(&out, &out), args, &out, nil, nil)
	return code, out.String()
}

func TestFromBuildx(t *testing.T) {
	for in, want := range map[string]string{
		"":                           "",
		"registry":                   "registry",
		"oci=out/":                   "oci=out/",
		"type=registry":              "registry",
		"type=docker":                "docker",
		"type=oci,dest=out/":         "oci=out/",
		"type=oci,dest=/x,tar=false": "oci=/x",
		"type=local,dest=out":        "type=local,dest=out",
	} {
		if got := fromBuildx(in); got != want {
			t.Errorf("fromBuildx(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestOutputFlags: -o takes buildx's forms, --load and --push are its
// shorthands, and each conflict is named.
func TestOutputFlags(t *testing.T) {
	src := t.TempDir()
	for _, tc := range []struct {
		args []string
		want build.Output
		err  string
	}{
		{[]string{"-o", "type=oci,dest=out"}, build.Output{Kind: build.OutputOCI, Path: "out"}, ""},
		{[]string{"--load"}, build.Output{Kind: build.OutputDocker}, ""},
		{[]string{"--push", "-o", "type=registry"}, build.Output{Kind: build.OutputRegistry}, ""},
		{[]string{"--load", "--push"}, build.Output{}, "--load conflicts with --output"},
		{[]string{"--load", "-o", "oci=x"}, build.Output{}, "--load conflicts with --output oci=x"},
		{[]string{"-t", "reg.example/fedscale-exec:v1"}, build.Output{}, `--tag "reg.example/fedscale-exec:v1": a tag, not an image reference`},
		{[]string{"-o", "type=local,dest=x"}, build.Output{}, `--output "type=local,dest=x": want registry, docker or oci=PATH`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var f flags
			exec := &cobra.Command{Use: "exec"}
			f.bind(exec)
			if err := exec.ParseFlags(append(tc.args, "--source", src)); err != nil {
				t.Fatal(err)
			}
			opts, err := f.options([]string{"exec"}, &bytes.Buffer{})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || opts.Output != tc.want {
				t.Errorf("output %+v, %v; want %+v", opts.Output, err, tc.want)
			}
		})
	}
}

// TestFlagsWhereTheyApply: pin and version list no build flag, every
// subcommand has examples, no default is printed twice.
func TestFlagsWhereTheyApply(t *testing.T) {
	for _, tc := range []struct {
		cmd          string
		want, absent []string
	}{
		{"pin", []string{"--check", "--source", "--insecure-registry", "Examples:"}, []string{"--push", "--platform", "--cuda", "--tag", "--output"}},
		{"version", []string{"-o, --output", "Examples:"}, []string{"--push", "--source"}},
		{"exec", []string{"-t, --tag", "-o, --output", "--load", "--push", "Examples:"}, []string{"--check"}},
		{"aggr", []string{"Examples:", "--platform"}, nil},
		{"all", []string{"Examples:", "--cuda"}, nil},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			code, out := runCode(t, tc.cmd, "--help")
			if code != 0 {
				t.Fatalf("code %d\n%s", code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("help lacks %q:\n%s", w, out)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(out, a) {
					t.Errorf("help has %q:\n%s", a, out)
				}
			}
			for _, line := range strings.Split(out, "\n") {
				if strings.Count(line, "default") > 1 && strings.Contains(line, "(default \"") {
					t.Errorf("a default printed twice: %s", line)
				}
			}
		})
	}
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"version", "-o", "json"}, cli.ExitOK},
		{[]string{"exec", "--platform", "windows/amd64"}, cli.ExitUsage},
		{[]string{"exec", "--progress", "fancy"}, cli.ExitUsage},
		{[]string{"exec", "--no-such-flag"}, cli.ExitUsage},
		{[]string{"pin", "--push"}, cli.ExitUsage},
		{[]string{"exec", "now"}, cli.ExitUsage},
	} {
		if code, out := runCode(t, tc.args...); code != tc.code {
			t.Errorf("fsbuild %s: code %d, want %d\n%s", strings.Join(tc.args, " "), code, tc.code, out)
		}
	}
}

// TestBuildKitUnreachable: a BuildKit address where nothing listens exits
// 3 (a backend cannot be reached) at once, with one message naming the
// address and where it came from.
func TestBuildKitUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "tcp://" + l.Addr().String()
	l.Close() // nothing listens there now
	for _, tc := range []struct {
		name string
		flag string // --builder; "" leaves it to $BUILDKIT_HOST
		from string
	}{
		{"flag", addr, "(from --builder)"},
		{"environment", "", "(from $BUILDKIT_HOST)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("BUILDKIT_HOST", addr)
			args := []string{"exec", "--progress", "quiet"}
			if tc.flag != "" {
				t.Setenv("BUILDKIT_HOST", "unix:///nonexistent/buildkitd.sock")
				args = append(args, "--builder", tc.flag)
			}
			code, out := runCode(t, args...)
			if code != cli.ExitUnreachable {
				t.Fatalf("code %d, want %d\n%s", code, cli.ExitUnreachable, out)
			}
			if want := "no BuildKit daemon answers at " + addr + " " + tc.from; !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		})
	}
}

// TestCompletion: cobra's __complete, as the shell scripts call it.
func TestCompletion(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"exec", "--platform", ""}, []string{"linux/amd64", "linux/arm64"}},
		{[]string{"exec", "--progress", ""}, []string{"auto", "plain", "tty", "quiet"}},
		{[]string{"all", "-o", ""}, []string{"registry", "docker", "type=oci,dest="}},
		{[]string{"exec", "--cuda", ""}, []string{"12.4"}},
		{[]string{"version", "-o", ""}, []string{"json", "yaml"}},
		{[]string{""}, []string{"aggr", "exec", "all", "pin", "version"}},
	} {
		code, out := runCode(t, append([]string{"__complete"}, tc.args...)...)
		lines := map[string]bool{}
		for _, l := range strings.Split(out, "\n") {
			name, _, _ := strings.Cut(l, "\t")
			lines[name] = true
		}
		for _, w := range tc.want {
			if code != 0 || !lines[w] {
				t.Errorf("__complete %q: code %d, lacks %q:\n%s", tc.args, code, w, out)
			}
		}
	}
}
