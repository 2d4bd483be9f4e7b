package devinfra

import (
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestKubeFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		err  string
	}{
		{"defaults", nil, ""},
		{"a port that is not a number", map[string]string{"FEDSCALE_KUBE_API_PORT": "x"}, `FEDSCALE_KUBE_API_PORT="x": want an integer from 1 to 65535`},
		{"a port out of range", map[string]string{"FEDSCALE_KUBE_ETCD_PORT": "70000"}, "FEDSCALE_KUBE_ETCD_PORT"},
		{"two daemons on one port", map[string]string{"FEDSCALE_KUBE_KCM_PORT": "16443"}, "FEDSCALE_KUBE_API_PORT and FEDSCALE_KUBE_KCM_PORT are both 16443"},
		{"a zero timeout", map[string]string{"FEDSCALE_KUBE_START_TIMEOUT": "0"}, "FEDSCALE_KUBE_START_TIMEOUT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range []string{"FEDSCALE_KUBE_STATE", "FEDSCALE_KUBE_API_PORT", "FEDSCALE_KUBE_ETCD_PORT", "FEDSCALE_KUBE_ETCD_PEER_PORT",
				"FEDSCALE_KUBE_KCM_PORT", "FEDSCALE_KUBE_SCHEDULER_PORT", "FEDSCALE_KUBE_START_TIMEOUT"} {
				t.Setenv(v, tc.env[v])
			}
			k, err := KubeFromEnv("/repo", nil, discard())
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// What callers parse and what daemons started by the scripts use.
			if k.Kubeconfig() != "/tmp/fedscale-kube/kubeconfig" || k.Server() != "https://127.0.0.1:16443" ||
				k.Ports != (KubePorts{16443, 23791, 23801, 16257, 16259}) || k.StartTimeout != 90*time.Second {
				t.Errorf("defaults: %s %s %+v %s", k.Kubeconfig(), k.Server(), k.Ports, k.StartTimeout)
			}
		})
	}
}

// Every daemon of every stack is started with its Mark among its
// arguments, so its pid file's process is recognised as ours.
func TestStacksMarkTheirDaemons(t *testing.T) {
	k := &Kube{State: "/tmp/fedscale-kube", Ports: KubePorts{16443, 23791, 23801, 16257, 16259}, Log: discard()}
	b := &BuildKit{State: "/tmp/fedscale-buildkit", Log: discard()}
	d := &Docker{State: "/tmp/fedscale-dockerd", Log: discard()}
	for _, st := range []*Stack{k.stack(), b.stack(), d.stack()} {
		for _, dm := range st.Daemons {
			if !ownedBy(append([]string{"/cache/bin/" + dm.Tool}, dm.Args...), dm) {
				t.Errorf("%s: started with %q, not recognised by its mark %q", dm.Name, dm.Args, dm.Mark)
			}
			if dm.Mark == "" && dm.Name != "dockerd" {
				t.Errorf("%s has no mark: any process of that binary would count as ours", dm.Name)
			}
		}
	}
}

func TestKubeconfig(t *testing.T) {
	k := &Kube{State: t.TempDir(), Ports: KubePorts{API: 16443}, Log: discard()}
	if err := k.pki().Make(time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := k.writeKubeconfig(); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", k.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	token, _ := k.pki().Token()
	if cfg.Host != "https://127.0.0.1:16443" || cfg.BearerToken != token || len(cfg.CAData) == 0 {
		t.Errorf("kubeconfig: host %s, token %v, CA %d bytes", cfg.Host, cfg.BearerToken == token, len(cfg.CAData))
	}
	raw, err := clientcmd.LoadFromFile(k.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	if ns := raw.Contexts[raw.CurrentContext].Namespace; ns != "default" {
		t.Errorf("namespace %q", ns)
	}
}

func TestBuildKitConfig(t *testing.T) {
	t.Setenv("FEDSCALE_BUILDKIT_STATE", "/tmp/fedscale-buildkit")
	t.Setenv("FEDSCALE_BUILDKIT_INSECURE_REGISTRIES", "reg.example:5000  10.0.0.2:80")
	b, err := BuildKitFromEnv(nil, discard())
	if err != nil {
		t.Fatal(err)
	}
	if b.Addr() != "unix:///tmp/fedscale-buildkit/buildkitd.sock" {
		t.Errorf("Addr = %s", b.Addr())
	}
	cfg := string(b.config())
	for _, want := range []string{"[worker.oci]\n  enabled = true\n", "[worker.containerd]\n  enabled = false\n",
		"[registry.\"reg.example:5000\"]\n  http = true\n", "[registry.\"10.0.0.2:80\"]\n  http = true\n"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("buildkitd.toml lacks %q:\n%s", want, cfg)
		}
	}
	t.Setenv("FEDSCALE_BUILDKIT_STATE", filepath.Join("/tmp", strings.Repeat("x", 100)))
	if _, err := BuildKitFromEnv(nil, discard()); err == nil || !strings.Contains(err.Error(), "FEDSCALE_BUILDKIT_STATE") {
		t.Errorf("a socket path over 104 bytes: %v", err)
	}
	t.Setenv("FEDSCALE_BUILDKIT_STATE", "/tmp/b")
	t.Setenv("FEDSCALE_BUILDKIT_INSECURE_REGISTRIES", `a"]x`)
	if _, err := BuildKitFromEnv(nil, discard()); err == nil || !strings.Contains(err.Error(), "FEDSCALE_BUILDKIT_INSECURE_REGISTRIES") {
		t.Errorf("a registry name that would break the TOML: %v", err)
	}
}
