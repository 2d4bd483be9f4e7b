// Package rootfs lays out, in a folder of the build context, the files one
// image layer adds: the runtime binary and, on a scratch base, the few files
// a static Go program needs (CA certificates, /etc/passwd with the non-root
// user, a world-writable /tmp).
//
// Everything here is deterministic: fixed modes, no host files (the CA bundle
// comes from a pinned Go module, not from this machine's /etc/ssl), so two
// machines stage byte-identical trees. Timestamps are left to BuildKit's
// rewrite-timestamp.
package rootfs

import (
	"bytes"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// UID and GID of the non-root user every image runs as (distroless's
// "nonroot", so files made for one run on the other).
const (
	UID = 65532
	GID = 65532
)

// BinDir is where binaries go inside the image.
const BinDir = "/usr/local/bin"

// CABundlePath is where Go's crypto/x509 (and most other TLS stacks) look on Linux.
const CABundlePath = "/etc/ssl/certs/ca-certificates.crt"

// Spec says what one layer holds.
type Spec struct {
	// Binaries maps a file name under BinDir to the compiled file on the host.
	Binaries map[string]string
	// System adds the files a scratch base lacks. Leave it off on a real base
	// (distroless, CUDA): its own /etc/passwd and certificates must not be
	// shadowed, and the CUDA variant must add exactly one small layer.
	System bool
}

// Stage writes the layer's tree under dir (which must not exist yet or be empty).
func Stage(dir string, spec Spec) error {
	if err := mkdir(dir, 0o755); err != nil {
		return err
	}
	if spec.System {
		files := []struct {
			name string
			data []byte
		}{
			{"etc/passwd", []byte(fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", UID, GID))},
			{"etc/group", []byte(fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", GID))},
			{strings.TrimPrefix(CABundlePath, "/"), CABundle()},
		}
		for _, f := range files {
			if err := writeFile(filepath.Join(dir, f.name), bytes.NewReader(f.data), 0o644); err != nil {
				return err
			}
		}
		// /tmp for os.TempDir; the home folder exists so tools that expect
		// $HOME find it (it is root-owned: the runtime writes only to the
		// mounted log and data paths).
		if err := mkdir(filepath.Join(dir, "tmp"), 0o777|os.ModeSticky); err != nil {
			return err
		}
		if err := mkdir(filepath.Join(dir, "home", "nonroot"), 0o755); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(spec.Binaries))
	for n := range spec.Binaries {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if n == "" || strings.Contains(n, "/") {
			return fmt.Errorf("rootfs: binary name %q: want a plain file name", n)
		}
		src, err := os.Open(spec.Binaries[n])
		if err != nil {
			return fmt.Errorf("rootfs: %w", err)
		}
		err = writeFile(filepath.Join(dir, filepath.FromSlash(path.Join(BinDir, n))), src, 0o755)
		src.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// CABundle is the Mozilla (NSS) root set pinned by the
// golang.org/x/crypto/x509roots/fallback module version in go.mod, as PEM.
// Roots carrying extra constraints (distrust-after dates) are left out:
// a PEM file cannot express the constraint, and trusting them without it
// would be wider than NSS intends.
func CABundle() []byte {
	var buf bytes.Buffer
	for r := range bundle.Roots() {
		if r.Constraint != nil {
			continue
		}
		_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate})
	}
	return buf.Bytes()
}

// mkdir makes dir and its parents with mode, ignoring the umask (parents get 0755).
func mkdir(dir string, mode os.FileMode) error {
	if err := mkdirParents(dir); err != nil {
		return err
	}
	if err := os.Chmod(dir, mode); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	return nil
}

func writeFile(name string, r io.Reader, mode os.FileMode) error {
	if err := mkdirParents(filepath.Dir(name)); err != nil {
		return err
	}
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("rootfs: writing %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	// Chmod after create: the umask must not decide a file's mode in the image.
	if err := os.Chmod(name, mode); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	return nil
}

// mkdirParents makes dir and missing parents with mode 0755 regardless of umask.
func mkdirParents(dir string) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	if err := mkdirParents(filepath.Dir(dir)); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		return fmt.Errorf("rootfs: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	return nil
}
