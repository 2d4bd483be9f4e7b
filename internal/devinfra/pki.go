package devinfra

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// PKI is the control plane's credentials in one folder: a CA (ca.crt,
// ca.key), the apiserver's serving certificate (apiserver.crt, .key), the
// service-account key pair (sa.key, sa.pub) and the admin token
// (admin.token, and tokens.csv for --token-auth-file). It is made once and
// kept across stop and start, so a kubeconfig a test has read stays valid.
type PKI struct{ Dir string }

// APIServerNames are the names the apiserver's certificate is valid for:
// loopback, the kubernetes Service's first address in 10.96.0.0/16, and
// the Service's DNS names.
var APIServerNames = struct {
	IPs []net.IP
	DNS []string
}{
	IPs: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(10, 96, 0, 1)},
	DNS: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
}

// pkiLifetime is how long the certificates are valid; pkiMargin is how
// long before the end Verify already refuses them.
const (
	pkiLifetime = 10 * 365 * 24 * time.Hour
	pkiMargin   = 24 * time.Hour
)

func (p PKI) path(name string) string { return filepath.Join(p.Dir, name) }

// Ensure keeps a PKI that Verify accepts (one the shell script made with
// openssl included) and makes a new one otherwise. made says which.
func (p PKI) Ensure(now time.Time) (made bool, err error) {
	if p.Verify(now) == nil {
		return false, nil
	}
	return true, p.Make(now)
}

// Make writes a new PKI, replacing the folder.
func (p PKI) Make(now time.Time) error {
	if err := os.RemoveAll(p.Dir); err != nil {
		return err
	}
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		return err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "fedscale-kube-ca"},
		NotBefore:             now.Add(-time.Hour), // tolerate a little clock skew
		NotAfter:              now.Add(pkiLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := sign(caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	srvDER, srvKey, err := leaf{cn: "kube-apiserver", ips: APIServerNames.IPs, dns: APIServerNames.DNS,
		use: x509.ExtKeyUsageServerAuth}.issue(ca, caKey, now)
	if err != nil {
		return err
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	saPub, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		return err
	}
	tok := make([]byte, 32)
	if _, err := rand.Read(tok); err != nil {
		return err
	}
	token := hex.EncodeToString(tok)
	files := []pkiFile{
		{"ca.crt", pemBlock("CERTIFICATE", caDER), 0o644},
		{"apiserver.crt", pemBlock("CERTIFICATE", srvDER), 0o644},
		{"sa.pub", pemBlock("PUBLIC KEY", saPub), 0o644},
		// token,user,uid,"groups": the one user every client (tests, the
		// controller manager, the scheduler, kwok) authenticates as.
		{"tokens.csv", []byte(token + `,admin,admin,"system:masters"` + "\n"), 0o600},
	}
	for _, k := range []struct {
		name string
		key  crypto.PrivateKey
	}{{"ca.key", caKey}, {"apiserver.key", srvKey}, {"sa.key", saKey}} {
		der, err := x509.MarshalPKCS8PrivateKey(k.key)
		if err != nil {
			return err
		}
		files = append(files, pkiFile{k.name, pemBlock("PRIVATE KEY", der), 0o600})
	}
	// admin.token last: its presence marks a complete PKI.
	files = append(files, pkiFile{"admin.token", []byte(token + "\n"), 0o600})
	for _, f := range files {
		if err := writeFileAtomic(p.path(f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

type pkiFile struct {
	name string
	data []byte
	mode os.FileMode
}

func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	return x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// Verify checks the PKI as the apiserver and its clients will use it: the
// serving certificate chains to the CA for every name in APIServerNames
// for server authentication until at least pkiMargin after now, and
// matches its key; the service-account keys are a pair; the token is in
// tokens.csv.
func (p PKI) Verify(now time.Time) error {
	read := func(name string) ([]byte, error) { return os.ReadFile(p.path(name)) }
	caPEM, err := read("ca.crt")
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("%s: no certificate", p.path("ca.crt"))
	}
	srvPEM, err := read("apiserver.crt")
	if err != nil {
		return err
	}
	srvKeyPEM, err := read("apiserver.key")
	if err != nil {
		return err
	}
	pair, err := tls.X509KeyPair(srvPEM, srvKeyPEM)
	if err != nil {
		return fmt.Errorf("%s: %w", p.path("apiserver.crt"), err)
	}
	srv, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return err
	}
	names := APIServerNames.DNS
	for _, ip := range APIServerNames.IPs {
		names = append(names, ip.String())
	}
	for _, at := range []time.Time{now, now.Add(pkiMargin)} {
		for _, n := range names {
			if _, err := srv.Verify(x509.VerifyOptions{
				DNSName: n, Roots: pool, CurrentTime: at,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			}); err != nil {
				return fmt.Errorf("%s: %w", p.path("apiserver.crt"), err)
			}
		}
	}
	if err := p.verifySA(); err != nil {
		return err
	}
	token, err := p.Token()
	if err != nil {
		return err
	}
	csv, err := read("tokens.csv")
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(csv, []byte(token+",")) {
		return fmt.Errorf("%s does not hold the token of %s", p.path("tokens.csv"), p.path("admin.token"))
	}
	return nil
}

// verifySA checks that sa.pub is sa.key's public half. The key may be
// PKCS#8 (ours, openssl 3) or PKCS#1 (older openssl).
func (p PKI) verifySA() error {
	keyPEM, err := os.ReadFile(p.path("sa.key"))
	if err != nil {
		return err
	}
	pubPEM, err := os.ReadFile(p.path("sa.pub"))
	if err != nil {
		return err
	}
	kb, _ := pem.Decode(keyPEM)
	pb, _ := pem.Decode(pubPEM)
	if kb == nil || pb == nil {
		return fmt.Errorf("%s or %s holds no PEM block", p.path("sa.key"), p.path("sa.pub"))
	}
	var key any
	if key, err = x509.ParsePKCS8PrivateKey(kb.Bytes); err != nil {
		if key, err = x509.ParsePKCS1PrivateKey(kb.Bytes); err != nil {
			return fmt.Errorf("%s: %w", p.path("sa.key"), err)
		}
	}
	pub, err := x509.ParsePKIXPublicKey(pb.Bytes)
	if err != nil {
		return fmt.Errorf("%s: %w", p.path("sa.pub"), err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return fmt.Errorf("%s: not a signing key", p.path("sa.key"))
	}
	eq, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !eq.Equal(pub) {
		return fmt.Errorf("%s is not the public key of %s", p.path("sa.pub"), p.path("sa.key"))
	}
	return nil
}

// Token is the admin user's bearer token.
func (p PKI) Token() (string, error) {
	b, err := os.ReadFile(p.path("admin.token"))
	if err != nil {
		return "", err
	}
	t := strings.TrimSpace(string(b))
	if t == "" || strings.ContainsAny(t, ", \t\n") {
		return "", errors.New(p.path("admin.token") + " holds no usable token")
	}
	return t, nil
}

// leaf is a certificate the CA issues: the apiserver's, and those beside
// the PKI's own files, <name>.crt and <name>.key, checked and reissued at
// each start (a new CA invalidates them).
type leaf struct {
	name string
	cn   string
	orgs []string
	ips  []net.IP
	dns  []string
	use  x509.ExtKeyUsage
}

// The kubelet's leaves: the apiserver's client certificate for kubelets
// (logs, exec; group system:masters, so the kubelet's webhook
// authorisation allows it) and the real node's serving certificate.
var (
	kubeletClient  = leaf{name: "kubelet-client", cn: "kube-apiserver-kubelet-client", orgs: []string{"system:masters"}, use: x509.ExtKeyUsageClientAuth}
	kubeletServing = leaf{name: "kubelet", cn: NodeName, ips: []net.IP{net.ParseIP(nodeIP)}, dns: []string{NodeName}, use: x509.ExtKeyUsageServerAuth}
)

// issue makes l's key (ECDSA P-256) and its certificate signed by ca.
func (l leaf) issue(ca *x509.Certificate, caKey crypto.Signer, now time.Time) ([]byte, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := sign(&x509.Certificate{
		Subject:               pkix.Name{CommonName: l.cn, Organization: l.orgs},
		NotBefore:             now.Add(-time.Hour), // tolerate a little clock skew
		NotAfter:              now.Add(pkiLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{l.use},
		BasicConstraintsValid: true,
		IPAddresses:           l.ips,
		DNSNames:              l.dns,
	}, ca, key.Public(), caKey)
	return der, key, err
}

// ensureLeaf keeps l when it chains to the CA for its use until at least
// pkiMargin after now and matches its key, and issues it anew otherwise.
func (p PKI) ensureLeaf(l leaf, now time.Time) error {
	if p.verifyLeaf(l, now) == nil {
		return nil
	}
	caPair, err := tls.LoadX509KeyPair(p.path("ca.crt"), p.path("ca.key"))
	if err != nil {
		return fmt.Errorf("the CA in %s: %w", p.Dir, err)
	}
	ca, err := x509.ParseCertificate(caPair.Certificate[0])
	if err != nil {
		return err
	}
	caKey, ok := caPair.PrivateKey.(crypto.Signer)
	if !ok {
		return fmt.Errorf("%s: not a signing key", p.path("ca.key"))
	}
	der, key, err := l.issue(ca, caKey, now)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	// The key first: a certificate without its key fails verifyLeaf.
	if err := writeFileAtomic(p.path(l.name+".key"), pemBlock("PRIVATE KEY", keyDER), 0o600); err != nil {
		return err
	}
	return writeFileAtomic(p.path(l.name+".crt"), pemBlock("CERTIFICATE", der), 0o644)
}

func (p PKI) verifyLeaf(l leaf, now time.Time) error {
	caPEM, err := os.ReadFile(p.path("ca.crt"))
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("%s: no certificate", p.path("ca.crt"))
	}
	pair, err := tls.LoadX509KeyPair(p.path(l.name+".crt"), p.path(l.name+".key"))
	if err != nil {
		return err
	}
	c, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return err
	}
	for _, at := range []time.Time{now, now.Add(pkiMargin)} {
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{l.use}}); err != nil {
			return fmt.Errorf("%s: %w", p.path(l.name+".crt"), err)
		}
	}
	for _, ip := range l.ips {
		if err := c.VerifyHostname(ip.String()); err != nil {
			return err
		}
	}
	return nil
}
