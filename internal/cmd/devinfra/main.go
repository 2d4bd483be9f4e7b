// Command devinfra builds the pinned tools and starts and stops the daemons
// the integration tests use (package internal/devinfra). The scripts under
// scripts/ exec it, keeping their verbs and outputs:
//
//	devinfra tools NAME...                        # the bin folder of each group, one per line
//	devinfra infra-tools                          # the tools `make infra` runs, for one parallel build
//	devinfra buildkitd start|stop|status|addr      # start prints the address last
//	devinfra kube start|stop|status|kubeconfig     # start prints the kubeconfig path last
//	devinfra node start|stop|status|addr           # the real node; start prints containerd's address last
//	devinfra node leftovers                        # after a stop: what is left (processes, mounts, links, iptables rules); exit 1 if any
//	devinfra node import OCI-LAYOUT...             # fsbuild's images into the node's containerd
//	devinfra dockerd install|start|stop|status
//	devinfra swarm start|stop|status|addr          # two more engines in one swarm; start prints their addresses last
//	devinfra swarm leftovers                       # after a stop: what is left (processes, mounts, namespaces, veths, cgroups, folders); exit 1 if any
//
// Progress goes to stderr; stdout carries only what callers parse.
// --root names the repository (tools/ holds the helper modules); by default
// the one holding the current directory.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/mod/modfile"

	"github.com/fedscale/fedscale-go/internal/devinfra"
	"github.com/fedscale/fedscale-go/runtime/fedlog"
)

const module = "github.com/fedscale/fedscale-go"

// errUsage: a bad command line (exit status 2).
var errUsage = errors.New("usage: devinfra [--root DIR] tools NAME... | infra-tools | buildkitd start|stop|status|addr | kube start|stop|status|kubeconfig | node start|stop|status|addr|leftovers|import DIR... | dockerd install|start|stop|status | swarm start|stop|status|addr|leftovers")

// errDown: status found the daemon not running (exit status 1, no message).
var errDown = errors.New("not running")

func main() {
	root := flag.String("root", "", "the repository (default: the one holding the current directory)")
	flag.Usage = func() { fmt.Fprintln(os.Stderr, errUsage) }
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, *root, flag.Args(), os.Stdout)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	case errors.Is(err, errDown):
		os.Exit(1)
	default:
		fmt.Fprintln(os.Stderr, "devinfra:", err)
		os.Exit(1)
	}
}

// prefixed writes each line (the Plain handler writes one per Write) after
// a prefix, so progress says where it comes from.
type prefixed struct {
	w      io.Writer
	prefix string
}

func (p prefixed) Write(b []byte) (int, error) {
	if _, err := io.WriteString(p.w, p.prefix+string(b)); err != nil {
		return 0, err
	}
	return len(b), nil
}

func run(ctx context.Context, root string, args []string, stdout io.Writer) error {
	if len(args) < 1 {
		return errUsage
	}
	group := args[0]
	log := slog.New(fedlog.NewPlain(prefixed{os.Stderr, "devinfra " + group + ": "}, slog.LevelInfo))
	if root == "" {
		var err error
		if root, err = findRoot(); err != nil {
			return err
		}
	}
	// Non-login shells (CI, sudo) may lack the sbin folders, where Debian
	// puts runc and dockerd.
	os.Setenv("PATH", os.Getenv("PATH")+":/usr/local/sbin:/usr/sbin:/sbin")
	tools, err := devinfra.ToolboxFromEnv(root, log)
	if err != nil {
		return err
	}
	if group == "tools" {
		if len(args) < 2 {
			return errUsage
		}
		dirs, err := tools.Dirs(ctx, args[1:]...)
		if err != nil {
			return err
		}
		return say(stdout, strings.Join(dirs, "\n"))
	}
	if group == "infra-tools" {
		return infraTools(root, tools, log, stdout)
	}
	if len(args) < 2 {
		return errUsage
	}
	svc, extra, err := service(ctx, group, root, tools, log, stdout)
	if err != nil {
		return err
	}
	verb, rest := args[1], args[2:]
	if f, ok := extra[verb]; ok {
		return f(rest)
	}
	if len(rest) > 0 {
		return errUsage
	}
	switch verb {
	case "start":
		out, err := svc.Start(ctx)
		if err != nil || out == "" {
			return err
		}
		return say(stdout, out)
	case "stop":
		return svc.Stop(ctx)
	case "status":
		lines, ok := svc.Status(ctx)
		if err := say(stdout, strings.Join(lines, "\n")); err != nil {
			return err
		}
		if !ok {
			return errDown
		}
		return nil
	default:
		return errUsage
	}
}

// service is the group's Service and its verbs beyond start, stop and
// status.
func service(ctx context.Context, group, root string, tools *devinfra.Toolbox, log *slog.Logger, stdout io.Writer) (devinfra.Service, map[string]func(args []string) error, error) {
	switch group {
	case "buildkitd":
		b, err := devinfra.BuildKitFromEnv(tools, log)
		if err != nil {
			return nil, nil, err
		}
		return b, map[string]func([]string) error{"addr": noArgs(func() error { return say(stdout, b.Addr()) })}, nil
	case "kube":
		k, err := devinfra.KubeFromEnv(root, tools, log)
		if err != nil {
			return nil, nil, err
		}
		return k, map[string]func([]string) error{"kubeconfig": noArgs(func() error { return say(stdout, k.Kubeconfig()) })}, nil
	case "node":
		k, err := devinfra.KubeFromEnv(root, tools, log)
		if err != nil {
			return nil, nil, err
		}
		n := devinfra.NewNode(k, log)
		return n, map[string]func([]string) error{
			"addr":      noArgs(func() error { return say(stdout, n.Containerd()) }),
			"leftovers": noArgs(func() error { return leftovers(stdout, "node", n.Leftovers(ctx)) }),
			"import": func(dirs []string) error {
				if len(dirs) == 0 {
					return errUsage
				}
				for _, d := range dirs {
					refs, err := devinfra.ImportLayout(ctx, n.Containerd(), d)
					if err != nil {
						return err
					}
					log.Info("imported " + strings.Join(refs, " ") + " into the node's containerd")
				}
				return nil
			},
		}, nil
	case "dockerd":
		d, err := devinfra.DockerFromEnv(log)
		if err != nil {
			return nil, nil, err
		}
		return d, map[string]func([]string) error{"install": noArgs(func() error { return d.Install(ctx) })}, nil
	case "swarm":
		s, err := devinfra.SwarmFromEnv(log)
		if err != nil {
			return nil, nil, err
		}
		return s, map[string]func([]string) error{
			"addr":      noArgs(func() error { return say(stdout, strings.Join(s.Addrs(), " ")) }),
			"leftovers": noArgs(func() error { return leftovers(stdout, "swarm", s.Leftovers()) }),
		}, nil
	}
	return nil, nil, errUsage
}

// infraTools prints the tools `make infra` starts (the node's only for
// root, who alone can run it), for one parallel build of them all.
func infraTools(root string, tools *devinfra.Toolbox, log *slog.Logger, stdout io.Writer) error {
	b, err := devinfra.BuildKitFromEnv(tools, log)
	if err != nil {
		return err
	}
	k, err := devinfra.KubeFromEnv(root, tools, log)
	if err != nil {
		return err
	}
	svcs := []devinfra.Service{b, k}
	if os.Geteuid() == 0 {
		svcs = append(svcs, devinfra.NewNode(k, log))
	}
	return say(stdout, strings.Join(devinfra.TableTools(svcs...), " "))
}

// leftovers prints what a stopped service left, a line each, and fails
// when there is any: CI checks that `make infra-stop` leaves nothing.
func leftovers(w io.Writer, what string, left []string) error {
	if len(left) == 0 {
		return nil
	}
	if err := say(w, strings.Join(left, "\n")); err != nil {
		return err
	}
	return fmt.Errorf("the %s left %d things behind (listed above)", what, len(left))
}

// noArgs is a verb that takes no arguments.
func noArgs(f func() error) func([]string) error {
	return func(args []string) error {
		if len(args) > 0 {
			return errUsage
		}
		return f()
	}
}

func say(w io.Writer, s string) error { _, err := fmt.Fprintln(w, s); return err }

// findRoot walks up from the current directory to this module's go.mod.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if data, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && modfile.ModulePath(data) == module {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no %s checkout holds %s: pass --root", module, dir)
		}
	}
}
