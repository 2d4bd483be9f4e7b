package devinfra

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// DebTool is a pinned set of Debian packages, fetched with apt-get download
// from a private sources list (the machine's own apt configuration is not
// touched) and unpacked with dpkg -x into the tool cache:
// <Cache>/<Name>-<Version>/lib holds the packages' shared libraries. apt
// checks each package against the suite's signed Release file.
type DebTool struct {
	Name     string
	Source   string   // one sources.list line
	Packages []string // installed at exactly Version
	Version  string   // the Debian version of every package
	// Want is the file whose presence in lib means the tool is complete.
	Want string
}

// debTools are the tools that come from Debian packages rather than Go
// modules.
var debTools = []DebTool{
	// NVRTC (CUDA 12.4), so the CUDA backend's kernels are compiled in
	// make test without a GPU or a driver: Debian trixie's non-free
	// packages, the same CUDA version as runtime/version.CUDA.
	{
		Name: "nvrtc", Source: "deb http://deb.debian.org/debian trixie non-free",
		Packages: []string{"libnvrtc12", "libnvrtc-builtins12.4"}, Version: "12.4.127~12.4.1-2",
		Want: "libnvrtc.so.12",
	},
}

func lookupDebTool(name string) (DebTool, bool) {
	i := slices.IndexFunc(debTools, func(d DebTool) bool { return d.Name == name })
	if i < 0 {
		return DebTool{}, false
	}
	return debTools[i], true
}

// multiarch is Debian's library folder name for GOARCH.
func multiarch(goarch string) (string, error) {
	switch goarch {
	case "amd64":
		return "x86_64-linux-gnu", nil
	case "arm64":
		return "aarch64-linux-gnu", nil
	}
	return "", fmt.Errorf("no Debian packages for %s", goarch)
}

// debDir returns d's lib folder, fetching and unpacking the packages when
// they are not in the cache yet. A second caller waits on the folder's
// lock, then finds the libraries.
func (tb *Toolbox) debDir(ctx context.Context, d DebTool) (string, error) {
	key := filepath.Join(tb.Cache, d.Name+"-"+d.Version)
	lib := filepath.Join(key, "lib")
	if _, err := os.Stat(filepath.Join(lib, d.Want)); err == nil {
		return lib, nil
	}
	if err := os.MkdirAll(key, 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(ctx, filepath.Join(key, ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(lib, d.Want)); err == nil {
		return lib, nil
	}
	triplet, err := multiarch(runtime.GOARCH)
	if err != nil {
		return "", fmt.Errorf("%s: %w", d.Name, err)
	}
	tmp, err := os.MkdirTemp(key, ".fetch.") // same filesystem: the move is a rename
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	tb.Log.Info(fmt.Sprintf("fetching %s (%s %s) into %s ...", d.Name, strings.Join(d.Packages, " "), d.Version, lib))
	start := time.Now()
	for _, dir := range []string{"lists/partial", "cache/archives/partial", "debs", "root"} {
		if err := os.MkdirAll(filepath.Join(tmp, dir), 0o755); err != nil {
			return "", err
		}
	}
	list := filepath.Join(tmp, "sources.list")
	if err := os.WriteFile(list, []byte(d.Source+"\n"), 0o644); err != nil {
		return "", err
	}
	// Everything apt writes stays under tmp; as root apt would hand the
	// download to its _apt user, who cannot write there.
	opts := []string{
		"-q", "-o", "Dir::Etc::sourcelist=" + list, "-o", "Dir::Etc::sourceparts=-",
		"-o", "Dir::State::Lists=" + filepath.Join(tmp, "lists"), "-o", "Dir::Cache=" + filepath.Join(tmp, "cache"),
		"-o", "APT::Get::List-Cleanup=0", "-o", "APT::Sandbox::User=" + currentUser(),
		"-o", "APT::Architecture=" + runtime.GOARCH,
	}
	if err := tb.runIn(ctx, tmp, "apt-get", append(slices.Clone(opts), "update")...); err != nil {
		return "", fmt.Errorf("%s: apt-get update from %q: %w", d.Name, d.Source, err)
	}
	args := append(slices.Clone(opts), "download")
	for _, p := range d.Packages {
		args = append(args, p+"="+d.Version)
	}
	if err := tb.runIn(ctx, filepath.Join(tmp, "debs"), "apt-get", args...); err != nil {
		return "", fmt.Errorf("%s: apt-get download: %w", d.Name, err)
	}
	debs, err := filepath.Glob(filepath.Join(tmp, "debs", "*.deb"))
	if err != nil || len(debs) != len(d.Packages) {
		return "", fmt.Errorf("%s: apt-get download gave %d .deb files, want %d", d.Name, len(debs), len(d.Packages))
	}
	for _, deb := range debs {
		if err := tb.runIn(ctx, tmp, "dpkg", "-x", deb, filepath.Join(tmp, "root")); err != nil {
			return "", fmt.Errorf("%s: unpacking %s: %w", d.Name, filepath.Base(deb), err)
		}
	}
	got := filepath.Join(tmp, "root", "usr", "lib", triplet)
	if _, err := os.Stat(filepath.Join(got, d.Want)); err != nil {
		return "", fmt.Errorf("%s: the packages hold no usr/lib/%s/%s", d.Name, triplet, d.Want)
	}
	if err := os.RemoveAll(lib); err != nil {
		return "", err
	}
	if err := os.Rename(got, lib); err != nil {
		return "", err
	}
	tb.Log.Info(fmt.Sprintf("fetched %s in %.0f s", d.Name, time.Since(start).Seconds()))
	return lib, nil
}

// runIn runs a command in dir; its output is in the error when it fails.
func (tb *Toolbox) runIn(ctx context.Context, dir, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// currentUser is the user apt's downloads may run as: ourselves.
func currentUser() string {
	if os.Geteuid() == 0 {
		return "root"
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "root"
}
