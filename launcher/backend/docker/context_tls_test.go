package docker

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/docker/cli/cli/config"
	dcontext "github.com/docker/cli/cli/context/docker"
	"github.com/docker/cli/cli/context/store"
	"github.com/moby/moby/client"

	"github.com/fedscale/fedscale-go/internal/infratest"
)

// TestDockerContextTLS: a Docker CLI context whose engine is a TCP endpoint
// protected by mutual TLS works, with the CA, certificate and key the
// context stores. The engine is the real one, behind a TLS listener of
// the test's that demands a client certificate signed by the test's CA.
func TestDockerContextTLS(t *testing.T) {
	infratest.Docker(t)
	engine := os.Getenv("DOCKER_HOST")
	if engine == "" {
		engine = client.DefaultDockerHost
	}
	u, err := url.Parse(engine)
	if err != nil || u.Scheme != "unix" {
		t.Skipf("the engine is at %q; this test fronts a unix socket", engine)
	}
	ca, caKey := newCert(t, "test CA", nil, nil, true)
	srv, srvKey := newCert(t, "engine", ca, caKey, false)
	cli, cliKey := newCert(t, "client", ca, caKey, false)
	addr := tlsFront(t, u.Path, ca, srv, srvKey)

	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	config.SetDir(dir) // the CLI's config package reads $DOCKER_CONFIG once per process
	t.Setenv("DOCKER_HOST", "")
	t.Setenv("DOCKER_TLS_VERIFY", "")
	t.Setenv("DOCKER_CERT_PATH", "")
	s := store.New(dir+"/contexts", contextStoreConfig)
	create := func(name string, files map[string][]byte) {
		t.Helper()
		err := s.CreateOrUpdate(store.Metadata{Name: name, Metadata: map[string]any{},
			Endpoints: map[string]any{dcontext.DockerEndpoint: dcontext.EndpointMeta{Host: "tcp://" + addr}}})
		if err != nil {
			t.Fatal(err)
		}
		if files != nil {
			if err := s.ResetEndpointTLSMaterial(name, dcontext.DockerEndpoint, &store.EndpointTLSData{Files: files}); err != nil {
				t.Fatal(err)
			}
		}
	}
	create("tls", map[string][]byte{"ca.pem": pemOf(ca), "cert.pem": pemOf(cli), "key.pem": keyPEM(t, cliKey)})
	create("no-client-cert", map[string][]byte{"ca.pem": pemOf(ca)})
	create("plain", nil)

	ping := func(name string) error {
		t.Helper()
		t.Setenv("DOCKER_CONTEXT", name)
		b, err := New(Options{})
		if err != nil {
			t.Fatalf("context %s: %v", name, err)
		}
		defer b.Close()
		if b.def.from != "docker context "+name {
			t.Errorf("context %s: engine from %q", name, b.def.from)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err = b.def.cli.Ping(ctx, client.PingOptions{})
		return err
	}
	if err := ping("tls"); err != nil {
		t.Fatalf("ping through the TLS context: %v", err)
	}
	// Reading only the context's host (as before) is plain HTTP to a TLS
	// port; without the client certificate the engine's front refuses.
	for _, name := range []string{"plain", "no-client-cert"} {
		if err := ping(name); err == nil {
			t.Errorf("context %s reached the mutual-TLS engine", name)
		}
	}
}

// tlsFront serves mutual TLS on 127.0.0.1 and relays each connection to
// the engine's unix socket.
func tlsFront(t *testing.T, socket string, ca, cert *x509.Certificate, key *ecdsa.PrivateKey) string {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: key}},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if err := c.(*tls.Conn).Handshake(); err != nil {
					return
				}
				e, err := net.Dial("unix", socket)
				if err != nil {
					return
				}
				defer e.Close()
				go func() { _, _ = io.Copy(e, c) }()
				_, _ = io.Copy(c, e)
			}()
		}
	}()
	return ln.Addr().String()
}

// newCert makes a certificate for 127.0.0.1 signed by parent (self-signed
// when parent is nil).
func newCert(t *testing.T, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, BasicConstraintsValid: true, IsCA: isCA,
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func pemOf(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func keyPEM(t *testing.T, k *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}
