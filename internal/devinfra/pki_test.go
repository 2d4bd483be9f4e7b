package devinfra

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		t.Fatalf("%s: no certificate", path)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The PKI checked with crypto/x509 directly (not through Verify), and used
// for a real TLS handshake as the apiserver's clients make it.
func TestPKIMake(t *testing.T) {
	p := PKI{Dir: filepath.Join(t.TempDir(), "pki")}
	now := time.Now()
	made, err := p.Ensure(now)
	if err != nil || !made {
		t.Fatalf("Ensure on an empty folder = %v, %v", made, err)
	}
	ca := readCert(t, p.path("ca.crt"))
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 || ca.Subject.CommonName != "fedscale-kube-ca" {
		t.Errorf("CA: IsCA %v, key usage %v, CN %q", ca.IsCA, ca.KeyUsage, ca.Subject.CommonName)
	}
	srv := readCert(t, p.path("apiserver.crt"))
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, name := range []string{"127.0.0.1", "10.96.0.1", "localhost", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"} {
		if _, err := srv.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("the serving certificate for %s: %v", name, err)
		}
	}
	if _, err := srv.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: roots}); err == nil {
		t.Error("the serving certificate is valid for example.com")
	}
	if _, err := srv.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("the serving certificate is valid for client auth")
	}
	if srv.NotAfter.Before(now.Add(9 * 365 * 24 * time.Hour)) {
		t.Errorf("the serving certificate ends %s", srv.NotAfter)
	}
	for name, mode := range map[string]os.FileMode{"ca.key": 0o600, "apiserver.key": 0o600, "sa.key": 0o600, "admin.token": 0o600, "tokens.csv": 0o600, "ca.crt": 0o644} {
		if fi, err := os.Stat(p.path(name)); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, mode %v, want %v", name, err, fi.Mode().Perm(), mode)
		}
	}
	token, err := p.Token()
	if err != nil || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(token) {
		t.Errorf("token %q, %v", token, err)
	}
	csv, _ := os.ReadFile(p.path("tokens.csv"))
	if string(csv) != token+`,admin,admin,"system:masters"`+"\n" {
		t.Errorf("tokens.csv = %q", csv)
	}

	pair, err := tls.LoadX509KeyPair(p.path("apiserver.crt"), p.path("apiserver.key"))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) }))
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	ts.StartTLS()
	defer ts.Close()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	resp, err := c.Get(strings.Replace(ts.URL, "127.0.0.1", "localhost", 1))
	if err != nil {
		t.Fatalf("TLS to a server with the apiserver's certificate, trusting the CA: %v", err)
	}
	resp.Body.Close()
}

// fromOther spoils a PKI with the file name of another PKI.
func fromOther(name string) func(PKI) error {
	return func(p PKI) error {
		other := PKI{Dir: p.Dir + "2"}
		if err := other.Make(time.Now()); err != nil {
			return err
		}
		data, err := os.ReadFile(other.path(name))
		if err != nil {
			return err
		}
		return os.WriteFile(p.path(name), data, 0o644)
	}
}

func TestPKIEnsureKeepsOrRemakes(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name   string
		spoil  func(p PKI) error
		at     time.Time
		remake bool
	}{
		{"valid: kept", func(PKI) error { return nil }, now, false},
		{"expiring within a day: remade", func(PKI) error { return nil }, now.Add(pkiLifetime - time.Hour), true},
		{"corrupt certificate: remade", func(p PKI) error { return os.WriteFile(p.path("apiserver.crt"), []byte("junk"), 0o644) }, now, true},
		{"missing token: remade", func(p PKI) error { return os.Remove(p.path("admin.token")) }, now, true},
		{"token not in tokens.csv: remade", func(p PKI) error { return os.WriteFile(p.path("admin.token"), []byte("abc\n"), 0o600) }, now, true},
		{"service-account keys of two pairs: remade", fromOther("sa.pub"), now, true},
		{"serving certificate of another CA: remade", fromOther("ca.crt"), now, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := PKI{Dir: filepath.Join(t.TempDir(), "pki")}
			if err := p.Make(now); err != nil {
				t.Fatal(err)
			}
			if err := tc.spoil(p); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(p.path("ca.crt"))
			made, err := p.Ensure(tc.at)
			if err != nil || made != tc.remake {
				t.Fatalf("Ensure = %v, %v; want made=%v", made, err, tc.remake)
			}
			after, _ := os.ReadFile(p.path("ca.crt"))
			if (string(before) != string(after)) != tc.remake {
				t.Errorf("ca.crt changed: %v, want %v", string(before) != string(after), tc.remake)
			}
			if err := p.Verify(tc.at); err != nil {
				t.Errorf("Verify after Ensure: %v", err)
			}
		})
	}
}
