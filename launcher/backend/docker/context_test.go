package docker

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/cli/cli/config"
)

// TestDockerContext: with DOCKER_HOST unset, the CLI's current context (or
// $DOCKER_CONTEXT) picks the engine, as for the docker CLI. Needs no engine.
func TestDockerContext(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	config.SetDir(dir) // the CLI's config package reads $DOCKER_CONFIG once per process
	t.Setenv("DOCKER_HOST", "")
	t.Setenv("DOCKER_CONTEXT", "")
	write := func(path, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sum := sha256.Sum256([]byte("remote"))
	write(filepath.Join(dir, "contexts", "meta", hex.EncodeToString(sum[:]), "meta.json"),
		`{"Name":"remote","Metadata":{},"Endpoints":{"docker":{"Host":"tcp://10.9.8.7:2375","SkipTLSVerify":false}}}`)
	write(filepath.Join(dir, "config.json"), `{"currentContext":"remote"}`)

	b, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if b.def.addr != "tcp://10.9.8.7:2375" || b.def.from != "docker context remote" {
		t.Errorf("host %q from %q, want the context's endpoint", b.def.addr, b.def.from)
	}

	t.Setenv("DOCKER_CONTEXT", "default")
	if b, err = New(Options{}); err != nil || b.def.from != "the default socket" {
		t.Errorf("DOCKER_CONTEXT=default: from %q, %v", b.def.from, err)
	}
	t.Setenv("DOCKER_CONTEXT", "missing")
	if _, err = New(Options{}); err == nil || !strings.Contains(err.Error(), `docker context "missing": not found`) {
		t.Errorf("unknown context: %v", err)
	}
	t.Setenv("DOCKER_HOST", "unix:///from-env.sock")
	if b, err = New(Options{}); err != nil || b.def.addr != "unix:///from-env.sock" {
		t.Errorf("DOCKER_HOST must win over the context: %q, %v", b.def.addr, err)
	}
}
