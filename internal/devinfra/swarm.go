package devinfra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// Swarm is two more Docker engines on this machine, A and B, each in a
// network namespace of its own joined to the other by a veth pair, in one
// swarm (A the manager, B a worker) with the attachable overlay network
// SwarmNetwork: the hosts' engines a job across hosts runs on in the tests.
// The recipe and its traps are the shared infra notes' ("Two Docker
// engines in one swarm"): one namespace each (in one, the second engine
// cannot make the overlay's VXLAN device), nsenter rather than `ip netns
// exec` (which remounts /sys and hides the cgroups), and each engine its
// own data root, exec root, socket, pid file, cgroup parent and key file.
// Root only; Debian's dockerd.
type Swarm struct {
	// State holds the engines' sockets, data roots, configs, pid files
	// and logs (FEDSCALE_SWARM_STATE, default /tmp/fedscale-swarm).
	State string
	Log   *slog.Logger
}

// SwarmNetwork is the swarm's attachable overlay network.
const SwarmNetwork = "fedscale-swarm-net"

// swarmNode is one engine of the swarm.
type swarmNode struct {
	name string // a, b
	ns   string // network namespace (ip netns)
	veth string // its end of the veth pair (at most 15 bytes)
	addr string // its address on the pair
}

// The pair's addresses: a private range no other part of the test
// infrastructure uses (Docker's 172.17/16, the real node's pod CIDR).
var swarmNodes = [2]swarmNode{
	{"a", "fedscale-swa", "fsw-a", "10.246.0.1"},
	{"b", "fedscale-swb", "fsw-b", "10.246.0.2"},
}

const (
	swarmPrefixLen    = "/24"
	swarmStartTimeout = 90 * time.Second
)

// SwarmFromEnv configures the swarm from the environment.
func SwarmFromEnv(log *slog.Logger) (*Swarm, error) {
	state, err := envPath("FEDSCALE_SWARM_STATE", "/tmp/fedscale-swarm")
	if err != nil {
		return nil, err
	}
	return &Swarm{State: state, Log: log}, nil
}

func (s *Swarm) dir(n swarmNode) string { return filepath.Join(s.State, n.name) }

// Socket is engine n's (0: A, 1: B) socket path.
func (s *Swarm) socket(n swarmNode) string { return filepath.Join(s.State, n.name+".sock") }

// execRoot is short: containerd's and the shims' sockets live under it,
// and a unix socket path has at most 107 bytes.
func (n swarmNode) execRoot() string { return "/run/" + n.ns }

func (n swarmNode) cgroupParent() string { return "/" + n.ns }

// Addrs are the engines' addresses, A's then B's, as DOCKER_HOST takes
// them.
func (s *Swarm) Addrs() []string {
	var out []string
	for _, n := range swarmNodes {
		out = append(out, "unix://"+s.socket(n))
	}
	return out
}

func (s *Swarm) stack() *Stack {
	st := &Stack{State: State{Dir: s.State}, Timeout: swarmStartTimeout, Log: s.Log}
	for i, n := range swarmNodes {
		sock := s.socket(n)
		d := Daemon{
			Name: "dockerd-" + n.name, Tool: "dockerd",
			Prefix: []string{"nsenter", "--net=/run/netns/" + n.ns},
			Args: []string{"--config-file", filepath.Join(s.dir(n), "daemon.json"),
				"--data-root", filepath.Join(s.dir(n), "data"), "--exec-root", n.execRoot(),
				"-H", "unix://" + sock, "-p", filepath.Join(s.dir(n), "docker.pid"),
				"--cgroup-parent", n.cgroupParent()},
			Mark:  "--data-root " + filepath.Join(s.dir(n), "data"),
			Ready: func(ctx context.Context) error { return ping(ctx, sock) },
			Await: true,
		}
		if i == len(swarmNodes)-1 {
			d.Then = s.form
		}
		st.Daemons = append(st.Daemons, d)
	}
	return st
}

// engineClient is a client of the engine at socket path sock.
func engineClient(sock string) (*client.Client, error) {
	return client.New(client.WithHost("unix://" + sock))
}

func ping(ctx context.Context, sock string) error {
	c, err := engineClient(sock)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Ping(ctx, client.PingOptions{})
	return err
}

// Start makes the two engines run in one swarm with SwarmNetwork, reusing
// a healthy running pair, and prints their addresses (A's, B's).
func (s *Swarm) Start(ctx context.Context) (string, error) {
	if os.Geteuid() != 0 {
		return "", errors.New("the swarm's engines need root (network namespaces, dockerd)")
	}
	st := s.stack()
	if _, err := st.Paths(ctx); err != nil {
		return "", fmt.Errorf("dockerd is not installed (scripts/dockerd.sh install, as root): %w", err)
	}
	for range 2 {
		if _, err := st.Up(ctx, s.prepare); err != nil {
			return "", err
		}
		pctx, cancel := context.WithTimeout(ctx, 2*probeTimeout)
		err := s.healthy(pctx)
		cancel()
		if err == nil {
			return strings.Join(s.Addrs(), " "), nil
		}
		// Daemons that run but lost their swarm (a crash, a hand-made
		// change): start afresh once.
		s.Log.Info("the swarm is not whole (" + err.Error() + "); starting afresh")
		if err := s.Stop(ctx); err != nil {
			return "", err
		}
	}
	return "", errors.New("the swarm is not whole after a fresh start")
}

// healthy: A manages a swarm that B is an active worker of, and A has the
// network.
func (s *Swarm) healthy(ctx context.Context) error {
	a, err := engineClient(s.socket(swarmNodes[0]))
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := engineClient(s.socket(swarmNodes[1]))
	if err != nil {
		return err
	}
	defer b.Close()
	ia, err := a.Info(ctx, client.InfoOptions{})
	if err != nil {
		return err
	}
	ib, err := b.Info(ctx, client.InfoOptions{})
	if err != nil {
		return err
	}
	if !ia.Info.Swarm.ControlAvailable || ib.Info.Swarm.LocalNodeState != swarm.LocalNodeStateActive {
		return fmt.Errorf("engine A: swarm %s (manager %v), engine B: swarm %s", ia.Info.Swarm.LocalNodeState, ia.Info.Swarm.ControlAvailable, ib.Info.Swarm.LocalNodeState)
	}
	n, err := a.NetworkInspect(ctx, SwarmNetwork, client.NetworkInspectOptions{})
	if err != nil {
		return err
	}
	if !n.Network.Attachable || n.Network.Driver != "overlay" {
		return fmt.Errorf("network %s is not an attachable overlay", SwarmNetwork)
	}
	return nil
}

// prepare removes what an earlier start left (the caller holds the lock
// and has stopped the daemons) and makes the namespaces, the veth pair
// and each engine's folder and config.
func (s *Swarm) prepare(ctx context.Context) error {
	if err := s.clean(ctx); err != nil {
		return err
	}
	a, b := swarmNodes[0], swarmNodes[1]
	steps := [][]string{
		{"netns", "add", a.ns}, {"netns", "add", b.ns},
		{"link", "add", a.veth, "type", "veth", "peer", "name", b.veth},
		{"link", "set", a.veth, "netns", a.ns}, {"link", "set", b.veth, "netns", b.ns},
	}
	for _, n := range swarmNodes {
		steps = append(steps,
			[]string{"-n", n.ns, "addr", "add", n.addr + swarmPrefixLen, "dev", n.veth},
			[]string{"-n", n.ns, "link", "set", n.veth, "up"},
			[]string{"-n", n.ns, "link", "set", "lo", "up"})
	}
	for _, args := range steps {
		if err := ipCmd(ctx, args...); err != nil {
			return err
		}
	}
	for _, n := range swarmNodes {
		if err := os.MkdirAll(s.dir(n), 0o755); err != nil {
			return err
		}
		// Its own key file, else both engines take the main engine's
		// identity and the swarm sees one node twice.
		cfg, err := json.Marshal(map[string]any{"deprecated-key-path": filepath.Join(s.dir(n), "key.json")})
		if err != nil {
			return err
		}
		if err := writeFileAtomic(filepath.Join(s.dir(n), "daemon.json"), cfg, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// form makes the swarm: A initialises it, B joins as a worker, A creates
// the network.
func (s *Swarm) form(ctx context.Context) error {
	a, b := swarmNodes[0], swarmNodes[1]
	ca, err := engineClient(s.socket(a))
	if err != nil {
		return err
	}
	defer ca.Close()
	cb, err := engineClient(s.socket(b))
	if err != nil {
		return err
	}
	defer cb.Close()
	if _, err := ca.SwarmInit(ctx, client.SwarmInitOptions{ListenAddr: a.addr + ":2377", AdvertiseAddr: a.addr, DataPathAddr: a.addr}); err != nil {
		return fmt.Errorf("swarm init on engine A: %w", err)
	}
	sw, err := ca.SwarmInspect(ctx, client.SwarmInspectOptions{})
	if err != nil {
		return fmt.Errorf("swarm inspect on engine A: %w", err)
	}
	if _, err := cb.SwarmJoin(ctx, client.SwarmJoinOptions{ListenAddr: b.addr + ":2377", AdvertiseAddr: b.addr, DataPathAddr: b.addr,
		RemoteAddrs: []string{a.addr + ":2377"}, JoinToken: sw.Swarm.JoinTokens.Worker}); err != nil {
		return fmt.Errorf("engine B joining the swarm: %w", err)
	}
	if _, err := ca.NetworkCreate(ctx, SwarmNetwork, client.NetworkCreateOptions{Driver: "overlay", Attachable: true}); err != nil && !cerrdefs.IsConflict(err) {
		return fmt.Errorf("creating network %s on engine A: %w", SwarmNetwork, err)
	}
	return nil
}

// Status says whether both engines run and form the swarm.
func (s *Swarm) Status(ctx context.Context) ([]string, bool) {
	lines, ok := s.stack().Status()
	if !ok {
		return lines, false
	}
	if err := s.healthy(ctx); err != nil {
		return append(lines, "swarm not whole: "+err.Error()), false
	}
	return append(lines, "swarm with network "+SwarmNetwork+": "+strings.Join(s.Addrs(), " ")), true
}

// Stop leaves the swarm, stops both engines and removes everything they
// and Start made: namespaces (the veth pair and the engines' bridges and
// overlay devices go with them), mounts, data and exec roots, sockets,
// cgroups.
func (s *Swarm) Stop(ctx context.Context) error {
	if _, err := os.Stat(s.State); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	unlock, err := State{Dir: s.State}.Lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	st := s.stack()
	// Leaving first keeps the swarm's state from outliving the engines in
	// a data root that a failed removal would leave; best effort, as the
	// data roots go anyway.
	for i := len(swarmNodes) - 1; i >= 0; i-- {
		if st.State.PID(st.Daemons[i]) == 0 {
			continue
		}
		if c, err := engineClient(s.socket(swarmNodes[i])); err == nil {
			lctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			_, _ = c.SwarmLeave(lctx, client.SwarmLeaveOptions{Force: true})
			cancel()
			c.Close()
		}
	}
	if err := st.Stop(); err != nil {
		return err
	}
	return s.clean(ctx)
}

// clean removes what the engines and Start leave once the engines are
// stopped; what is already gone is skipped.
func (s *Swarm) clean(ctx context.Context) error {
	var errs []error
	for _, n := range swarmNodes {
		roots := []string{s.dir(n), n.execRoot()}
		removable := append([]string(nil), roots...)
		if err := unmountUnder(roots...); err != nil {
			// Never walk into a file system still mounted below: it
			// may be anyone's data.
			errs = append(errs, err)
			removable = nil
		}
		if _, err := os.Stat("/run/netns/" + n.ns); err == nil {
			if err := ipCmd(ctx, "netns", "del", n.ns); err != nil {
				errs = append(errs, err)
			}
		}
		for _, p := range append(removable, s.socket(n)) {
			if err := os.RemoveAll(p); err != nil {
				errs = append(errs, err)
			}
		}
		if err := removeCgroups(n.cgroupParent()); err != nil {
			errs = append(errs, err)
		}
	}
	// A pair whose namespaces were deleted by hand may leave an end here.
	for _, n := range swarmNodes {
		if _, err := os.Stat("/sys/class/net/" + n.veth); err == nil {
			if err := ipCmd(ctx, "link", "del", n.veth); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Leftovers lists what a stopped swarm left on this machine: its engines'
// processes, mounts below their roots, their network namespaces, veth
// ends and cgroups, and their folders; nil when Stop removed everything.
func (s *Swarm) Leftovers() []string {
	out := s.stack().running()
	for _, n := range swarmNodes {
		out = append(out, mountLeftovers(s.dir(n), n.execRoot())...)
		for _, p := range []string{"/run/netns/" + n.ns, "/sys/class/net/" + n.veth, s.dir(n), n.execRoot(), s.socket(n)} {
			if _, err := os.Lstat(p); err == nil {
				out = append(out, p)
			}
		}
		cg, _ := filepath.Glob("/sys/fs/cgroup/*" + n.cgroupParent())
		if fi, err := os.Stat("/sys/fs/cgroup" + n.cgroupParent()); err == nil && fi.IsDir() {
			cg = append(cg, "/sys/fs/cgroup"+n.cgroupParent())
		}
		for _, c := range cg {
			out = append(out, "cgroup "+c)
		}
	}
	return out
}

func ipCmd(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// removeCgroups removes the cgroup folder parent (and the empty folders
// below it) of every hierarchy: v1's one per controller, v2's one.
func removeCgroups(parent string) error {
	var dirs []string
	if hs, err := filepath.Glob("/sys/fs/cgroup/*" + parent); err == nil {
		dirs = append(dirs, hs...)
	}
	if fi, err := os.Stat("/sys/fs/cgroup" + parent); err == nil && fi.IsDir() {
		dirs = append(dirs, "/sys/fs/cgroup"+parent)
	}
	var errs []error
	for _, d := range dirs {
		var sub []string
		_ = filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				sub = append(sub, p)
			}
			return nil
		})
		// Children before parents: cgroup folders go with rmdir only.
		sort.Sort(sort.Reverse(sort.StringSlice(sub)))
		for _, p := range sub {
			if err := syscall.Rmdir(p); err != nil && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("removing cgroup %s: %w", p, err))
			}
		}
	}
	return errors.Join(errs...)
}
