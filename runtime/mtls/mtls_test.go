package mtls

import (
	"crypto/x509"
	"encoding/pem"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestIssueAndLoad(t *testing.T) {
	b, err := Issue("job", []string{"job-aggregator", "127.0.0.1"}, 3, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := b.Write(dir); err != nil {
		t.Fatal(err)
	}
	other, _ := Issue("other", []string{"127.0.0.1"}, 1, time.Now())
	otherDir := t.TempDir()
	if err := other.Write(otherDir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "executor-2.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", fi.Mode(), err)
	}
	if _, err := Dir(dir, 0).ServerCredentials(); err != nil {
		t.Errorf("aggregator's files: %v", err)
	}
	for r := 1; r <= 3; r++ {
		if _, err := Dir(dir, r).ClientCredentials(r); err != nil {
			t.Errorf("executor %d's files: %v", r, err)
		}
	}
	for _, tc := range []struct {
		name string
		load func() error
		want string
	}{
		{"executor certificate as server", func() error { _, err := Dir(dir, 1).ServerCredentials(); return err }, "executor 1's certificate, not the aggregator's"},
		{"rank 1 serving rank 2", func() error { _, err := Dir(dir, 1).ClientCredentials(2); return err }, "issued to rank 1, this process is rank 2"},
		{"another CA", func() error {
			f := Dir(dir, 1)
			f.CA = filepath.Join(otherDir, CAFile)
			_, err := f.ClientCredentials(1)
			return err
		}, "is not issued by --tls-ca"},
		{"missing key", func() error { _, err := (Files{CA: "a", Cert: "b"}).ClientCredentials(1); return err }, "--tls-key: required"},
		{"no such file", func() error { _, err := Dir(t.TempDir(), 1).ClientCredentials(1); return err }, "--tls-ca: open"},
		{"a folder", func() error {
			f := Dir(dir, 1)
			f.CA = dir
			_, err := f.ClientCredentials(1)
			return err
		}, "not a regular file"},
		{"not PEM", func() error {
			f := Dir(dir, 1)
			f.CA = f.Key
			_, err := f.ClientCredentials(1)
			return err
		}, "holds no PEM certificate"},
		{"key of another process", func() error {
			f := Dir(dir, 1)
			f.Key = Dir(dir, 2).Key
			_, err := f.ClientCredentials(1)
			return err
		}, "private key does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.load()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}

	// What one process is handed holds no other process's key.
	got := slices.Sorted(maps.Keys(b.For(2)))
	if want := []string{"ca.crt", "executor-2.crt", "executor-2.key"}; !slices.Equal(got, want) {
		t.Errorf("For(2) = %v, want %v", got, want)
	}

	// The server certificate carries the names executors dial and only
	// server authentication; clients' only client authentication.
	srv := parse(t, b["aggregator.crt"])
	if !slices.Equal(srv.DNSNames, []string{"job-aggregator"}) || len(srv.IPAddresses) != 1 ||
		!slices.Equal(srv.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("aggregator certificate: names %v %v, usages %v", srv.DNSNames, srv.IPAddresses, srv.ExtKeyUsage)
	}
	if c := parse(t, b["executor-3.crt"]); !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		t.Errorf("executor certificate usages %v", c.ExtKeyUsage)
	}
}

func parse(t *testing.T, p []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(p)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCertRank(t *testing.T) {
	u := func(s string) *url.URL {
		v, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name string
		uris []*url.URL
		want int
		err  string
	}{
		{"aggregator", []*url.URL{RankURI(0)}, 0, ""},
		{"executor", []*url.URL{u("https://example.com/x"), RankURI(7)}, 7, ""},
		{"none", nil, 0, "names no FedScale rank"},
		{"other scheme only", []*url.URL{u("spiffe://example.org/rank/1")}, 0, "names no FedScale rank"},
		{"two ranks", []*url.URL{RankURI(1), RankURI(2)}, 0, "names 2 ranks"},
		{"negative", []*url.URL{u("spiffe://fedscale/rank/-1")}, 0, "malformed identity"},
		{"leading zero", []*url.URL{u("spiffe://fedscale/rank/01")}, 0, "malformed identity"},
		{"overflow", []*url.URL{u("spiffe://fedscale/rank/99999999999999999999")}, 0, "malformed identity"},
		{"too big for the wire", []*url.URL{u("spiffe://fedscale/rank/2147483648")}, 0, "malformed identity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CertRank(&x509.Certificate{URIs: tc.uris})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %d, %v; want error %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}
