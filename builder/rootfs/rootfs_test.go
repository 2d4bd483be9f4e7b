package rootfs

import (
	"crypto/x509"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
)

func TestStage(t *testing.T) {
	old := syscall.Umask(0o077) // a hostile umask must not change modes
	defer syscall.Umask(old)

	bin := filepath.Join(t.TempDir(), "prog")
	if err := os.WriteFile(bin, []byte("\x7fELF"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		spec   Spec
		wanted map[string]fs.FileMode
	}{
		{"scratch", Spec{System: true, Binaries: map[string]string{"executor": bin}}, map[string]fs.FileMode{
			".":                                 fs.ModeDir | 0o755,
			"etc":                               fs.ModeDir | 0o755,
			"etc/group":                         0o644,
			"etc/passwd":                        0o644,
			"etc/ssl":                           fs.ModeDir | 0o755,
			"etc/ssl/certs":                     fs.ModeDir | 0o755,
			"etc/ssl/certs/ca-certificates.crt": 0o644,
			"home":                              fs.ModeDir | 0o755,
			"home/nonroot":                      fs.ModeDir | 0o755,
			"tmp":                               fs.ModeDir | fs.ModeSticky | 0o777,
			"usr":                               fs.ModeDir | 0o755,
			"usr/local":                         fs.ModeDir | 0o755,
			"usr/local/bin":                     fs.ModeDir | 0o755,
			"usr/local/bin/executor":            0o755,
		}},
		{"on a base", Spec{Binaries: map[string]string{"aggregator": bin}}, map[string]fs.FileMode{
			".":                        fs.ModeDir | 0o755,
			"usr":                      fs.ModeDir | 0o755,
			"usr/local":                fs.ModeDir | 0o755,
			"usr/local/bin":            fs.ModeDir | 0o755,
			"usr/local/bin/aggregator": 0o755,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "rootfs")
			if err := Stage(dir, tc.spec); err != nil {
				t.Fatal(err)
			}
			got := map[string]fs.FileMode{}
			err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				fi, err := d.Info()
				if err != nil {
					return err
				}
				rel, _ := filepath.Rel(dir, p)
				got[filepath.ToSlash(rel)] = fi.Mode()
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			var diffs []string
			for k, v := range tc.wanted {
				if got[k] != v {
					diffs = append(diffs, k+": got "+got[k].String()+" want "+v.String())
				}
			}
			for k := range got {
				if _, ok := tc.wanted[k]; !ok {
					diffs = append(diffs, "unexpected "+k)
				}
			}
			sort.Strings(diffs)
			if len(diffs) > 0 {
				t.Error(strings.Join(diffs, "\n"))
			}
		})
	}
}

func TestCABundle(t *testing.T) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(CABundle()) {
		t.Fatal("CA bundle has no certificates")
	}
	if n := strings.Count(string(CABundle()), "BEGIN CERTIFICATE"); n < 100 {
		t.Errorf("CA bundle has %d certificates, want the Mozilla set (>100)", n)
	}
}

func TestStageErrors(t *testing.T) {
	dir := t.TempDir()
	if err := Stage(filepath.Join(dir, "a"), Spec{Binaries: map[string]string{"x": filepath.Join(dir, "missing")}}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing binary: %v", err)
	}
	if err := Stage(filepath.Join(dir, "b"), Spec{Binaries: map[string]string{"a/b": "x"}}); err == nil {
		t.Error("binary name with a slash accepted")
	}
}
