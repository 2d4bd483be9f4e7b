package devinfra

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Kube is a real Kubernetes control plane for tests, on loopback, with
// kwok's fake nodes (KwokNodes) instead of kubelets: etcd, kube-apiserver
// (token auth, RBAC, ServiceAccount admission on), kube-controller-manager
// (all default controllers), kube-scheduler and kwok, built from their Go
// modules by the Toolbox. No root needed.
type Kube struct {
	// State holds pki/, kubeconfig, etcd/, kwok.yaml, *.log, *.pid
	// (FEDSCALE_KUBE_STATE, default /tmp/fedscale-kube).
	State string
	// Ports on 127.0.0.1, fixed; start refuses if one is taken.
	Ports KubePorts
	// StartTimeout bounds a start once the binaries exist
	// (FEDSCALE_KUBE_START_TIMEOUT, seconds).
	StartTimeout time.Duration
	Root         string // the repository: tools/kwok/stages
	Tools        *Toolbox
	Log          *slog.Logger

	cs kubernetes.Interface // from the kubeconfig, once it is written
}

// KubePorts are the control plane's ports.
type KubePorts struct {
	API, Etcd, EtcdPeer, ControllerManager, Scheduler int
}

// portVar is a port's environment variable and default.
type portVar struct {
	env  string
	def  int
	port *int
}

// table names each port's environment variable and default.
func (p *KubePorts) table() []portVar {
	return []portVar{
		{"FEDSCALE_KUBE_API_PORT", 16443, &p.API},
		{"FEDSCALE_KUBE_ETCD_PORT", 23791, &p.Etcd},
		{"FEDSCALE_KUBE_ETCD_PEER_PORT", 23801, &p.EtcdPeer},
		{"FEDSCALE_KUBE_KCM_PORT", 16257, &p.ControllerManager},
		{"FEDSCALE_KUBE_SCHEDULER_PORT", 16259, &p.Scheduler},
	}
}

// KubeFromEnv configures the control plane from the environment, as
// scripts/kube.sh was.
func KubeFromEnv(root string, tools *Toolbox, log *slog.Logger) (*Kube, error) {
	k := &Kube{Root: root, Tools: tools, Log: log}
	var err error
	if k.State, err = envPath("FEDSCALE_KUBE_STATE", "/tmp/fedscale-kube"); err != nil {
		return nil, err
	}
	seen := map[int]string{}
	for _, p := range k.Ports.table() {
		if *p.port, err = envPort(p.env, p.def); err != nil {
			return nil, err
		}
		if other, dup := seen[*p.port]; dup {
			return nil, fmt.Errorf("%s and %s are both %d", other, p.env, *p.port)
		}
		seen[*p.port] = p.env
	}
	secs, err := envInt("FEDSCALE_KUBE_START_TIMEOUT", 90, 1, 3600)
	if err != nil {
		return nil, err
	}
	k.StartTimeout = time.Duration(secs) * time.Second
	return k, nil
}

// Kubeconfig is the path start prints: it trusts the cluster's own CA and
// authenticates with the static admin token (group system:masters).
func (k *Kube) Kubeconfig() string { return filepath.Join(k.State, "kubeconfig") }

// Server is the apiserver's URL.
func (k *Kube) Server() string { return "https://127.0.0.1:" + strconv.Itoa(k.Ports.API) }

func (k *Kube) pki() PKI         { return PKI{Dir: filepath.Join(k.State, "pki")} }
func (k *Kube) etcdData() string { return filepath.Join(k.State, "etcd") }
func (k *Kube) kwokConfig() string {
	return filepath.Join(k.State, "kwok.yaml")
}

// stack is the control plane's table: start order, arguments, the
// argument that marks each process as ours, and readiness.
func (k *Kube) stack() *Stack {
	pki := k.pki().path
	kubeconfig := k.Kubeconfig()
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(k.Ports.Etcd)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(k.Ports.EtcdPeer)
	// The controller manager and the scheduler authenticate and authorise
	// their own clients through the same kubeconfig.
	asClient := []string{"--kubeconfig=" + kubeconfig, "--authentication-kubeconfig=" + kubeconfig, "--authorization-kubeconfig=" + kubeconfig}
	return &Stack{
		State:   State{Dir: k.State},
		Timeout: k.StartTimeout,
		Tools:   k.Tools,
		Log:     k.Log,
		Daemons: []Daemon{{
			Name: "etcd", Tool: "etcd", Mark: "--data-dir=" + k.etcdData(),
			// --unsafe-no-fsync: a throwaway test cluster; fsync would make
			// every write wait for the disk.
			Args: []string{"--name=default", "--data-dir=" + k.etcdData(),
				"--listen-client-urls=" + etcdURL, "--advertise-client-urls=" + etcdURL,
				"--listen-peer-urls=" + peerURL, "--initial-advertise-peer-urls=" + peerURL,
				"--initial-cluster=default=" + peerURL,
				"--initial-cluster-state=new", "--unsafe-no-fsync", "--log-level=warn"},
			Ready: func(ctx context.Context) error { return etcdHealthy(ctx, etcdURL+"/health") },
			Await: true,
		}, {
			Name: "kube-apiserver", Tool: "kube-apiserver", Mark: "--token-auth-file=" + pki("tokens.csv"),
			// --endpoint-reconciler-type=none: the advertised address is
			// loopback, which an Endpoints object may not hold (the kubernetes
			// Service then has no endpoints; nothing here runs in a pod to
			// use it).
			Args: []string{"--etcd-servers=" + etcdURL,
				"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port=" + strconv.Itoa(k.Ports.API),
				"--tls-cert-file=" + pki("apiserver.crt"), "--tls-private-key-file=" + pki("apiserver.key"),
				"--token-auth-file=" + pki("tokens.csv"),
				"--authorization-mode=Node,RBAC",
				"--service-account-key-file=" + pki("sa.pub"),
				"--service-account-signing-key-file=" + pki("sa.key"),
				"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
				"--service-cluster-ip-range=10.96.0.0/16",
				"--endpoint-reconciler-type=none",
				// Logs and exec of the real node's pods (node.go): the
				// apiserver reaches its kubelet at its InternalIP (the node
				// name resolves nowhere) with a certificate of our CA.
				"--kubelet-client-certificate=" + pki(kubeletClient.name+".crt"),
				"--kubelet-client-key=" + pki(kubeletClient.name+".key"),
				"--kubelet-certificate-authority=" + pki("ca.crt"),
				"--kubelet-preferred-address-types=InternalIP,Hostname",
				"--allow-privileged=true",
				"--profiling=false"},
			Ready: k.apiReady,
			Await: true,
		}, {
			Name: "kube-controller-manager", Tool: "kube-controller-manager", Mark: asClient[0],
			// --use-service-account-credentials=false: every controller acts
			// as the admin user. QPS raised from 20/30 so Jobs of many pods
			// start quickly.
			Args: append(asClient[:3:3],
				"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(k.Ports.ControllerManager),
				"--service-account-private-key-file="+pki("sa.key"),
				"--root-ca-file="+pki("ca.crt"),
				"--use-service-account-credentials=false",
				"--leader-elect=false",
				"--controllers=*",
				"--service-cluster-ip-range=10.96.0.0/16",
				"--kube-api-qps=200", "--kube-api-burst=400",
				"--profiling=false"),
			Ready: func(ctx context.Context) error { return healthz(ctx, k.Ports.ControllerManager) },
		}, {
			Name: "kube-scheduler", Tool: "kube-scheduler", Mark: asClient[0],
			Args: append(asClient[:3:3],
				"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(k.Ports.Scheduler),
				"--leader-elect=false",
				"--profiling=false"),
			Ready: func(ctx context.Context) error { return healthz(ctx, k.Ports.Scheduler) },
		}, {
			Name: "kwok", Tool: "kwok", Mark: asClient[0],
			// KWOK_WORKDIR: kwok would also load ~/.kwok/kwok.yaml if it
			// exists (and with it, maybe a pod-complete stage).
			Env: []string{"KWOK_WORKDIR=" + filepath.Join(k.State, "kwok")},
			// --node-lease-duration-seconds: kwok renews each node's Lease
			// like a kubelet; without it (the default is 0) the node
			// lifecycle controller finds no heartbeat after its 50 s grace
			// period and marks every node NotReady.
			Args: []string{asClient[0],
				"--config=" + k.kwokConfig(),
				"--manage-all-nodes=false",
				"--manage-nodes-with-annotation-selector=" + KwokAnnotation + "=fake",
				"--node-lease-duration-seconds=40",
				"--cidr=10.244.0.0/16",
				"--node-ip=127.0.0.1"},
			Then: func(ctx context.Context) error {
				cs, err := k.client()
				if err != nil {
					return err
				}
				return createKwokNodes(ctx, cs)
			},
		}},
		Checks: []Check{{
			// The controller manager's serviceaccount controller works:
			// admission refuses pods until their ServiceAccount exists.
			What: "the default ServiceAccount", Log: "kube-controller-manager",
			Probe: func(ctx context.Context) error {
				cs, err := k.client()
				if err != nil {
					return err
				}
				_, err = cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
				return err
			},
		}, {
			What: "the kwok nodes", Log: "kwok",
			Probe: func(ctx context.Context) error {
				cs, err := k.client()
				if err != nil {
					return err
				}
				return kwokNodesReady(ctx, cs)
			},
		}},
	}
}

// client is a clientset from the kubeconfig start writes: the probes use
// what the tests will use.
func (k *Kube) client() (kubernetes.Interface, error) {
	if k.cs != nil {
		return k.cs, nil
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", k.Kubeconfig())
	if err != nil {
		return nil, err
	}
	cfg.Proxy = noProxy
	cfg.Timeout = 10 * time.Second
	cfg.QPS, cfg.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	k.cs = cs
	return cs, nil
}

// apiReady: the apiserver's /readyz says ok to the admin user.
func (k *Kube) apiReady(ctx context.Context) error {
	cs, err := k.client()
	if err != nil {
		return err
	}
	body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil {
		return err
	}
	if s := strings.TrimSpace(string(body)); s != "ok" {
		return fmt.Errorf("/readyz says %q", s)
	}
	return nil
}

// noProxy: loopback traffic never goes through an HTTP(S)_PROXY.
func noProxy(*http.Request) (*url.URL, error) { return nil, nil }

// probeHTTP is for probes of loopback endpoints, never proxied.
var probeHTTP = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}

// healthzHTTP reads the controller manager's and the scheduler's /healthz:
// they serve on certificates they make themselves at start, which nothing
// could verify, and only the word "ok" is read.
var healthzHTTP = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
	Proxy:           nil,
	TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // see above
}}

func get(ctx context.Context, c *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", u, resp.Status)
	}
	return body, nil
}

func etcdHealthy(ctx context.Context, u string) error {
	body, err := get(ctx, probeHTTP, u)
	if err != nil {
		return err
	}
	var h struct{ Health string }
	if err := json.Unmarshal(body, &h); err != nil {
		return fmt.Errorf("%s: %w", u, err)
	}
	if h.Health != "true" {
		return fmt.Errorf("%s: health %q", u, h.Health)
	}
	return nil
}

func healthz(ctx context.Context, port int) error {
	u := "https://127.0.0.1:" + strconv.Itoa(port) + "/healthz"
	body, err := get(ctx, healthzHTTP, u)
	if err != nil {
		return err
	}
	if s := strings.TrimSpace(string(body)); s != "ok" {
		return fmt.Errorf("%s says %q", u, s)
	}
	return nil
}

// writeKubeconfig writes the admin kubeconfig (0600, atomically).
func (k *Kube) writeKubeconfig() error {
	ca, err := os.ReadFile(k.pki().path("ca.crt"))
	if err != nil {
		return err
	}
	token, err := k.pki().Token()
	if err != nil {
		return err
	}
	const name = "fedscale-kube"
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: k.Server(), CertificateAuthorityData: ca}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: "admin", Namespace: "default"}
	cfg.CurrentContext = name
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	k.cs = nil // a new file: new credentials, maybe
	return writeFileAtomic(k.Kubeconfig(), data, 0o600)
}

// Start makes the control plane run and be ready, and returns the
// kubeconfig path. A healthy running one is reused as it is; a partly
// dead one is stopped and started afresh, with an empty etcd.
func (k *Kube) Start(ctx context.Context) (string, error) {
	started, err := k.stack().Up(ctx, k.prepare)
	if err != nil {
		return "", err
	}
	if started {
		k.Log.Info(fmt.Sprintf("serving at %s with %d kwok nodes", k.Server(), len(KwokNodes)))
	}
	return k.Kubeconfig(), nil
}

// prepare readies the state folder for a fresh start: the ports are free,
// the pki is valid, the kubeconfig and kwok's stages are written, and etcd
// starts empty.
func (k *Kube) prepare(context.Context) error {
	for _, p := range k.Ports.table() {
		if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(*p.port)), time.Second); err == nil {
			c.Close()
			return fmt.Errorf("port %d on 127.0.0.1 is in use by another process (set %s to another)", *p.port, p.env)
		}
	}
	made, err := k.pki().Ensure(time.Now())
	if err != nil {
		return fmt.Errorf("making the pki in %s: %w", k.pki().Dir, err)
	}
	if made {
		k.Log.Info("made a CA, serving certificate, service-account keys and admin token in " + k.pki().Dir)
	}
	if err := k.pki().ensureLeaf(kubeletClient, time.Now()); err != nil {
		return err
	}
	if err := k.writeKubeconfig(); err != nil {
		return err
	}
	kc, err := kwokConfig(k.Root)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(k.kwokConfig(), kc, 0o644); err != nil {
		return err
	}
	if err := os.RemoveAll(k.etcdData()); err != nil {
		return err
	}
	for _, dir := range []string{k.etcdData(), filepath.Join(k.State, "kwok")} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	return nil
}

// Stop stops the daemons and wipes etcd: the next start begins with an
// empty cluster. pki and the kubeconfig stay, so a path handed to a test
// keeps working after a restart.
func (k *Kube) Stop(ctx context.Context) error { return k.stack().Down(ctx, k.etcdData()) }

// Status is a line per daemon and, when all run and the apiserver is
// ready, where it serves; ok says whether it does.
func (k *Kube) Status(ctx context.Context) (lines []string, ok bool) {
	lines, ok = k.stack().Status()
	if !ok {
		return lines, false
	}
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if err := k.apiReady(pctx); err != nil {
		return append(lines, "kube-apiserver not ready: "+err.Error()), false
	}
	return append(lines, "kube-apiserver ready at "+k.Server()+"; kubeconfig "+k.Kubeconfig()), true
}
