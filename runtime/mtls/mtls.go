// Package mtls holds everything about the job's mutual TLS: the per-job
// certificate authority the launcher makes at submit, the identity a
// certificate carries (the rank of the process that holds it), and the
// gRPC transport credentials the aggregator and the executors load from
// PEM files.
//
// One CA per job, its private key never written anywhere: the launcher
// issues the aggregator's server certificate and one client certificate
// per executor rank at submit, then drops the key, so no process of the
// job, and nobody who later reads its files, can mint another identity.
//
// A certificate's identity is a URI SAN, spiffe://fedscale/rank/N (N = 0
// for the aggregator). The aggregator admits a session for rank N only from
// the holder of rank N's certificate (PeerRank); an executor accepts only a
// server whose certificate names rank 0 (the aggregator) and one of the
// addresses it dials. Only the aggregator's certificate allows server
// authentication, only executors' allow client authentication, so one
// side's certificate cannot act as the other.
package mtls

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/fedscale/fedscale-go/runtime/config"
	"github.com/fedscale/fedscale-go/runtime/inputfile"
)

// Validity of issued certificates: long enough for the longest training
// job, short enough that a leaked key does not outlive its job by years.
// NotBefore is set back an hour so a host whose clock runs slightly behind
// the launcher's still accepts them.
const (
	Validity = 365 * 24 * time.Hour
	backdate = time.Hour
)

// identity URIs: spiffe://fedscale/rank/N.
const (
	idScheme = "spiffe"
	idHost   = "fedscale"
	idPrefix = "/rank/"
)

// RankURI is the identity of the process of rank r.
func RankURI(r int) *url.URL {
	return &url.URL{Scheme: idScheme, Host: idHost, Path: idPrefix + strconv.Itoa(r)}
}

// CertRank reads the rank a certificate was issued to.
func CertRank(c *x509.Certificate) (int, error) {
	var found []int
	for _, u := range c.URIs {
		if u.Scheme != idScheme || u.Host != idHost || !strings.HasPrefix(u.Path, idPrefix) {
			continue
		}
		s := strings.TrimPrefix(u.Path, idPrefix)
		r, err := strconv.Atoi(s)
		if err != nil || r < 0 || r > config.MaxExecutors || strconv.Itoa(r) != s {
			return 0, fmt.Errorf("certificate %q: malformed identity %s", c.Subject.CommonName, u)
		}
		found = append(found, r)
	}
	switch len(found) {
	case 0:
		return 0, fmt.Errorf("certificate %q names no FedScale rank (want a URI SAN %s)", c.Subject.CommonName, RankURI(1))
	case 1:
		return found[0], nil
	}
	return 0, fmt.Errorf("certificate %q names %d ranks, want one", c.Subject.CommonName, len(found))
}

// CA is a job's certificate authority, alive only while the launcher
// issues the job's certificates.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
	now  time.Time
}

// NewCA makes a CA for the job named job.
func NewCA(job string, now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("job CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "fedscale job " + job + " CA"},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(Validity),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("job CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{cert: cert, key: key, pem: pemBlock("CERTIFICATE", der), now: now}, nil
}

// CertPEM is the CA certificate every process of the job trusts.
func (ca *CA) CertPEM() []byte { return ca.pem }

// KeyPair is one process's certificate and private key, PEM encoded.
type KeyPair struct{ Cert, Key []byte }

// Server issues the aggregator's certificate, valid for the host names and
// IP addresses executors dial (a Service's DNS name, a container name,
// 127.0.0.1).
func (ca *CA) Server(hosts []string) (KeyPair, error) {
	if len(hosts) == 0 {
		return KeyPair{}, errors.New("aggregator certificate: no host name or address to issue it for")
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "fedscale aggregator"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return ca.issue(tmpl, 0)
}

// Client issues executor rank's certificate.
func (ca *CA) Client(rank int) (KeyPair, error) {
	if rank < 1 || rank > config.MaxExecutors {
		return KeyPair{}, fmt.Errorf("executor certificate: rank %d is outside 1..%d", rank, config.MaxExecutors)
	}
	return ca.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "fedscale executor " + strconv.Itoa(rank)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, rank)
}

func (ca *CA) issue(tmpl *x509.Certificate, rank int) (KeyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return KeyPair{}, err
	}
	tmpl.SerialNumber = serial()
	tmpl.NotBefore = ca.now.Add(-backdate)
	tmpl.NotAfter = ca.cert.NotAfter
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.URIs = []*url.URL{RankURI(rank)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return KeyPair{}, fmt.Errorf("%s certificate: %w", tmpl.Subject.CommonName, err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return KeyPair{}, err
	}
	return KeyPair{Cert: pemBlock("CERTIFICATE", der), Key: pemBlock("PRIVATE KEY", pk)}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// Files names a process's TLS material: the job's CA certificate, its own
// certificate and its private key, PEM files.
type Files struct{ CA, Cert, Key string }

// IsZero reports that no file is named.
func (f Files) IsZero() bool { return f == Files{} }

// Check reports the first missing name, naming the flag.
func (f Files) Check() error {
	for _, x := range []struct{ flag, v string }{{"--tls-ca", f.CA}, {"--tls-cert", f.Cert}, {"--tls-key", f.Key}} {
		if x.v == "" {
			return fmt.Errorf("%s: required with the other TLS files (--tls-ca, --tls-cert, --tls-key)", x.flag)
		}
	}
	return nil
}

// maxPEM bounds each file read: a CA bundle or a key pair is a few KiB.
const maxPEM = 1 << 20

func readPEM(flag, path string) ([]byte, error) {
	b, err := inputfile.Read(path, maxPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	return b, nil
}

// load reads the three files and checks that the certificate is the job
// CA's and names a rank; it returns that rank.
func (f Files) load() (*x509.CertPool, tls.Certificate, int, error) {
	var cert tls.Certificate
	if err := f.Check(); err != nil {
		return nil, cert, 0, err
	}
	caPEM, err := readPEM("--tls-ca", f.CA)
	if err != nil {
		return nil, cert, 0, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, cert, 0, fmt.Errorf("--tls-ca: %s holds no PEM certificate", f.CA)
	}
	certPEM, err := readPEM("--tls-cert", f.Cert)
	if err != nil {
		return nil, cert, 0, err
	}
	keyPEM, err := readPEM("--tls-key", f.Key)
	if err != nil {
		return nil, cert, 0, err
	}
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, cert, 0, fmt.Errorf("--tls-cert %s, --tls-key %s: %w", f.Cert, f.Key, err)
	}
	leaf := cert.Leaf
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, cert, 0, fmt.Errorf("--tls-cert %s is not issued by --tls-ca %s: %w", f.Cert, f.CA, err)
	}
	rank, err := CertRank(leaf)
	if err != nil {
		return nil, cert, 0, fmt.Errorf("--tls-cert %s: %w", f.Cert, err)
	}
	return pool, cert, rank, nil
}

// ServerCredentials are the aggregator's: TLS 1.3, a client certificate
// from the job's CA required of every connection.
func (f Files) ServerCredentials() (credentials.TransportCredentials, error) {
	pool, cert, rank, err := f.load()
	if err != nil {
		return nil, err
	}
	if rank != 0 {
		return nil, fmt.Errorf("--tls-cert %s is executor %d's certificate, not the aggregator's", f.Cert, rank)
	}
	return credentials.NewTLS(&tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	}), nil
}

// ClientCredentials are executor rank's: the certificate must be that
// rank's, and the server must present the aggregator's certificate for the
// address dialled.
func (f Files) ClientCredentials(rank int) (credentials.TransportCredentials, error) {
	pool, cert, certRank, err := f.load()
	if err != nil {
		return nil, err
	}
	if certRank != rank {
		return nil, fmt.Errorf("--tls-cert %s is issued to rank %d, this process is rank %d", f.Cert, certRank, rank)
	}
	return credentials.NewTLS(&tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		// The chain and host name are verified by crypto/tls; this adds
		// that the server is the aggregator, not some other holder of a
		// certificate from this CA.
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("aggregator presented no certificate")
			}
			r, err := CertRank(cs.PeerCertificates[0])
			if err != nil {
				return err
			}
			if r != 0 {
				return fmt.Errorf("server presented rank %d's certificate, not the aggregator's", r)
			}
			return nil
		},
	}), nil
}

// PeerRank is the rank of the client certificate that authenticated the
// connection of ctx (a gRPC server handler's context). ok is false on a
// connection without TLS, whose peer is not authenticated.
func PeerRank(ctx context.Context) (rank int, ok bool, err error) {
	p, found := peer.FromContext(ctx)
	if !found || p.AuthInfo == nil {
		return 0, false, nil
	}
	info, isTLS := p.AuthInfo.(credentials.TLSInfo)
	if !isTLS {
		return 0, false, nil
	}
	if len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return 0, false, errors.New("connection has no verified client certificate")
	}
	rank, err = CertRank(info.State.VerifiedChains[0][0])
	if err != nil {
		return 0, false, err
	}
	return rank, true, nil
}

// CAFile is the CA certificate's name in a TLS folder (Dir).
const CAFile = "ca.crt"

// ProcessName names rank's files in a TLS folder: aggregator, executor-N.
func ProcessName(rank int) string {
	if rank == 0 {
		return "aggregator"
	}
	return "executor-" + strconv.Itoa(rank)
}

// Dir is the files of rank in a TLS folder the launcher wrote (--tls-dir):
// ca.crt, and aggregator.crt/.key or executor-N.crt/.key.
func Dir(dir string, rank int) Files {
	n := FileNames(rank)
	return Files{CA: filepath.Join(dir, n[0]), Cert: filepath.Join(dir, n[1]), Key: filepath.Join(dir, n[2])}
}

// Bundle is a job's TLS material as the launcher hands it over: file
// name (as Dir expects them) to contents.
type Bundle map[string][]byte

// Issue makes a job's CA and the certificates of its aggregator (valid
// for hosts) and of executors 1..executors, then forgets the CA's key.
func Issue(job string, hosts []string, executors int, now time.Time) (Bundle, error) {
	ca, err := NewCA(job, now)
	if err != nil {
		return nil, err
	}
	b := Bundle{CAFile: ca.CertPEM()}
	add := func(rank int, kp KeyPair) {
		n := FileNames(rank)
		b[n[1]], b[n[2]] = kp.Cert, kp.Key
	}
	kp, err := ca.Server(hosts)
	if err != nil {
		return nil, err
	}
	add(0, kp)
	for r := 1; r <= executors; r++ {
		if kp, err = ca.Client(r); err != nil {
			return nil, err
		}
		add(r, kp)
	}
	return b, nil
}

// FileNames are the files rank reads from a TLS folder.
func FileNames(rank int) []string {
	n := ProcessName(rank)
	return []string{CAFile, n + ".crt", n + ".key"}
}

// For is the part of b that ranks need: the CA certificate and their own
// pairs, nothing of another process.
func (b Bundle) For(ranks ...int) Bundle {
	out := Bundle{}
	for _, r := range ranks {
		for _, name := range FileNames(r) {
			if v, ok := b[name]; ok {
				out[name] = v
			}
		}
	}
	return out
}

// Write writes b into dir (created 0700) as 0600 files.
func (b Bundle) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, v := range b {
		if err := os.WriteFile(filepath.Join(dir, name), v, 0o600); err != nil {
			return err
		}
	}
	return nil
}
