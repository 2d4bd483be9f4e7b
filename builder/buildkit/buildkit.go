// Package buildkit runs fsbuild's image builds on a BuildKit daemon through
// its Go client: the built-in dockerfile.v0 frontend over local contexts,
// exported as an OCI layout folder that fsbuild then publishes itself.
//
// Why not let BuildKit push: fsbuild moves the provenance attestation out of
// the image index into an OCI referrer before anything is pushed, so the
// index digest depends only on the image content (see package attest).
package buildkit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/docker/cli/cli/config"
	"github.com/moby/buildkit/client"
	_ "github.com/moby/buildkit/client/connhelper/dockercontainer" // docker-container:// addresses
	_ "github.com/moby/buildkit/client/connhelper/ssh"             // ssh:// addresses
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
	"github.com/moby/buildkit/util/progress/progressui"
	"github.com/tonistiigi/fsutil"
	"golang.org/x/sync/errgroup"

	"github.com/fedscale/fedscale-go/builder/platform"
)

// DefaultAddress is where a buildkitd started as root listens by default.
const DefaultAddress = "unix:///run/buildkit/buildkitd.sock"

// HowToStart tells a user how to get a daemon; it ends every connection error.
const HowToStart = `start one with "scripts/buildkitd.sh start" in this repository (a local buildkitd built from source; ` +
	`then export BUILDKIT_HOST=unix:///tmp/fedscale-buildkit/buildkitd.sock), or with ` +
	`"docker run -d --name buildkitd --privileged moby/buildkit:v0.34.2" and --builder docker-container://buildkitd`

// Address picks the daemon address: the flag, else $BUILDKIT_HOST, else the default.
func Address(flag string) string {
	addr, _ := AddressFrom(flag)
	return addr
}

// AddressFrom is Address and where the address came from, for messages:
// "--builder", "$BUILDKIT_HOST" or "the default".
func AddressFrom(flag string) (addr, from string) {
	if flag != "" {
		return flag, "--builder"
	}
	if env := os.Getenv("BUILDKIT_HOST"); env != "" {
		return env, "$BUILDKIT_HOST"
	}
	return DefaultAddress, "the default"
}

// Client is a connection to one BuildKit daemon.
type Client struct {
	c    *client.Client
	addr string
}

// UnreachableError: no BuildKit daemon could be reached at Addr.
type UnreachableError struct {
	Addr string
	From string // where Addr came from (AddressFrom); "" when not known
	Err  error
}

func (e *UnreachableError) Error() string {
	from := ""
	if e.From != "" {
		from = " (from " + e.From + ")"
	}
	return fmt.Sprintf("no BuildKit daemon answers at %s%s: %s; %s", e.Addr, from, shortErr(e.Err), HowToStart)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// connectTimeout bounds the first call to a daemon: an address that
// swallows packets fails after it rather than hanging.
const connectTimeout = 10 * time.Second

// Connect dials addr and checks that a daemon answers, so a wrong address
// fails here with one clear message instead of in the middle of a build.
func Connect(ctx context.Context, addr string) (*Client, error) {
	return ConnectFrom(ctx, addr, "")
}

// ConnectFrom is Connect naming in its error where addr came from
// (AddressFrom). A daemon that cannot be reached is an *UnreachableError.
func ConnectFrom(ctx context.Context, addr, from string) (*Client, error) {
	c, err := client.New(ctx, addr)
	if err != nil {
		return nil, &UnreachableError{Addr: addr, From: from, Err: err}
	}
	pctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	workers, err := c.ListWorkers(pctx)
	if err != nil {
		c.Close()
		if ctx.Err() != nil { // interrupted, not unreachable
			return nil, fmt.Errorf("connecting to BuildKit at %s: %w", addr, context.Cause(ctx))
		}
		return nil, &UnreachableError{Addr: addr, From: from, Err: err}
	}
	if len(workers) == 0 {
		c.Close()
		return nil, fmt.Errorf("the BuildKit daemon at %s has no workers; start it with --oci-worker=true", addr)
	}
	return &Client{c: c, addr: addr}, nil
}

// shortErr drops gRPC's long connection-error preamble but keeps the cause.
func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, "dial "); i >= 0 {
		return strings.TrimRight(s[i:], `"`)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	return s
}

// Address is the daemon's address.
func (c *Client) Address() string { return c.addr }

// Close ends the connection.
func (c *Client) Close() error { return c.c.Close() }

// Build is one image build.
type Build struct {
	ContextDir    string // the staged files (package rootfs), one folder per platform
	DockerfileDir string
	Dockerfile    string // file name inside DockerfileDir
	Target        string // Dockerfile stage
	Platforms     []platform.Platform
	BuildArgs     map[string]string
	Labels        map[string]string // image config labels
	Annotations   map[string]string // annotations of each platform manifest
	// SourceDateEpoch sets every timestamp in the image (config, history,
	// layer entries through rewrite-timestamp).
	SourceDateEpoch int64
	// Provenance asks for a SLSA provenance attestation (built offline).
	Provenance bool
	OutDir     string // the OCI layout folder written
	Name       string // image name recorded in the provenance subject
	Progress   progressui.DisplayMode
	ProgressTo io.Writer
}

// Solve runs b and writes the OCI layout to b.OutDir.
func (c *Client) Solve(ctx context.Context, b Build) error {
	ctxFS, err := fsutil.NewFS(b.ContextDir)
	if err != nil {
		return fmt.Errorf("build context %s: %w", b.ContextDir, err)
	}
	dfFS, err := fsutil.NewFS(b.DockerfileDir)
	if err != nil {
		return fmt.Errorf("dockerfile folder %s: %w", b.DockerfileDir, err)
	}
	sde := strconv.FormatInt(b.SourceDateEpoch, 10)
	attrs := map[string]string{
		"filename":                    b.Dockerfile,
		"target":                      b.Target,
		"platform":                    platform.Join(b.Platforms),
		"build-arg:SOURCE_DATE_EPOCH": sde,
	}
	for k, v := range b.BuildArgs {
		attrs["build-arg:"+k] = v
	}
	for k, v := range b.Labels {
		attrs["label:"+k] = v
	}
	if b.Provenance {
		attrs["attest:provenance"] = "mode=min"
	}
	export := map[string]string{
		"tar":               "false",
		"oci-mediatypes":    "true",
		"rewrite-timestamp": "true",
		"source-date-epoch": sde,
		"compression":       "gzip",
		"force-compression": "true",
		"compression-level": "1",
	}
	if b.Name != "" {
		export["name"] = b.Name
	}
	for k, v := range b.Annotations {
		export["annotation."+k] = v
	}
	cfg := config.LoadDefaultConfigFile(io.Discard)
	opt := client.SolveOpt{
		Frontend:      "dockerfile.v0",
		FrontendAttrs: attrs,
		LocalMounts:   map[string]fsutil.FS{"context": ctxFS, "dockerfile": dfFS},
		Exports:       []client.ExportEntry{{Type: client.ExporterOCI, Attrs: export, OutputDir: b.OutDir}},
		Session: []session.Attachable{authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{
			AuthConfigProvider: authprovider.LoadAuthConfig(cfg),
		})},
	}

	mode := b.Progress
	if mode == "" {
		mode = progressui.AutoMode
	}
	out := b.ProgressTo
	if out == nil {
		out = io.Discard
		mode = progressui.QuietMode
	}
	display, err := progressui.NewDisplay(out, mode)
	if err != nil {
		return fmt.Errorf("--progress %s: %w", mode, err)
	}
	ch := make(chan *client.SolveStatus)
	eg, gctx := errgroup.WithContext(ctx)
	eg.Go(func() error {
		_, err := c.c.Solve(gctx, nil, opt, ch)
		return err
	})
	eg.Go(func() error {
		_, err := display.UpdateFrom(context.WithoutCancel(gctx), ch)
		return err
	})
	if err := eg.Wait(); err != nil {
		return fmt.Errorf("BuildKit at %s: %w", c.addr, err)
	}
	return nil
}

// Prune empties the daemon's build cache, so the next build starts clean
// (the reproducibility tests build twice from nothing).
func (c *Client) Prune(ctx context.Context) error {
	ch := make(chan client.UsageInfo)
	go func() {
		for range ch { // drain: Prune reports each record it removes
		}
	}()
	if err := c.c.Prune(ctx, ch, client.PruneAll); err != nil {
		return fmt.Errorf("pruning the BuildKit cache at %s: %w", c.addr, err)
	}
	return nil
}
