package k8s

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/fedscale/fedscale-go/launcher/backend"
)

var _ backend.Backend = (*Backend)(nil)

// An unreachable server is one clear error naming it and the kubeconfig,
// from every call that needs the server.
func TestUnreachable(t *testing.T) {
	kc := deadKubeconfig(t)
	b, err := New(Options{Kubeconfig: kc, Namespace: "fs"})
	if err != nil {
		t.Fatal(err)
	}
	if b.Name() != "k8s" || b.Namespace() != "fs" || b.Server() != "https://127.0.0.1:1" {
		t.Errorf("name %s namespace %s server %s", b.Name(), b.Namespace(), b.Server())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := testSpec(t, jobParams{name: "dead"})
	calls := map[string]func() error{
		"submit": func() error { return b.Submit(ctx, s) },
		"status": func() error { _, err := b.Status(ctx, "dead"); return err },
		"list":   func() error { _, err := b.List(ctx); return err },
		"wait":   func() error { _, err := b.Wait(ctx, "dead", backend.UntilRunning); return err },
		"stop":   func() error { return b.Stop(ctx, "dead") },
		"logs":   func() error { return b.Logs(ctx, "dead", backend.LogOptions{}, nil) },
	}
	for name, call := range calls {
		err := call()
		if err == nil || !strings.Contains(err.Error(), "https://127.0.0.1:1 is unreachable") || !strings.Contains(err.Error(), kc) {
			t.Errorf("%s: %v", name, err)
		}
		if strings.Count(err.Error(), "127.0.0.1:1") > 2 {
			t.Errorf("%s: repetitive error: %v", name, err)
		}
	}
	if ctx.Err() != nil {
		t.Errorf("calls took until the deadline: %v", ctx.Err())
	}
	t.Logf("e.g. %v", calls["status"]())
}

// Without any kubeconfig New says where it looked.
func TestNoKubeconfig(t *testing.T) {
	if _, err := os.Stat(clientcmd.RecommendedHomeFile); err == nil {
		t.Skipf("%s exists", clientcmd.RecommendedHomeFile)
	}
	home := t.TempDir()
	t.Setenv("KUBECONFIG", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	_, err := New(Options{})
	if err == nil || !strings.Contains(err.Error(), "no kubeconfig found") || !strings.Contains(err.Error(), clientcmd.RecommendedHomeFile) {
		t.Errorf("New without a kubeconfig: %v", err)
	}
	_, err = New(Options{Kubeconfig: filepath.Join(home, "nope")})
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("New with a missing kubeconfig: %v", err)
	}
}

// Names that cannot be jobs are not found, without a request.
func TestInvalidName(t *testing.T) {
	b, err := New(Options{Kubeconfig: deadKubeconfig(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, n := range []string{"", "Bad_Name", "a,b=c", strings.Repeat("x", 41)} {
		if _, err := b.Status(ctx, n); !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("status %q: %v", n, err)
		}
		if err := b.Stop(ctx, n); !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("stop %q: %v", n, err)
		}
	}
	if b.Requests() != 0 {
		t.Errorf("%d requests", b.Requests())
	}
}
