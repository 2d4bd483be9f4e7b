package local

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/job"
)

// state is what a job's folder records.
type state struct {
	Name    string    `json:"name"`
	JobFile string    `json:"jobFile"`
	LogDir  string    `json:"logDir"` // {log_path}/logs/{job_name}
	Created time.Time `json:"created"`
	// Instance identifies this submission (job name and a random nonce):
	// every process gets it in health.InstanceEnv and its health endpoint
	// answers with it, so a probe that reaches another job's process (on
	// this job's port) does not count. Empty in state written before it
	// existed: then any answer counts.
	Instance  string      `json:"instance,omitempty"`
	Processes []procState `json:"processes"`
}

type procState struct {
	Name       string   `json:"name"`
	Pid        int      `json:"pid"`                // the supervisor's; it leads its own process group
	LockFile   string   `json:"lockFile,omitempty"` // held by the supervisor while it runs (lock.go)
	HealthPort int      `json:"healthPort"`
	Log        string   `json:"log"`
	ExitFile   string   `json:"exitFile"`
	Argv       []string `json:"argv"`
	// MaxRestarts: how often the supervisor starts a failed process again;
	// it records each restart in RestartFile.
	MaxRestarts int    `json:"maxRestarts,omitempty"`
	RestartFile string `json:"restartFile,omitempty"`
}

func (b *Backend) dir(name string) string { return filepath.Join(b.opts.StateDir, name) }

func (b *Backend) binary(name string) (string, error) {
	if b.opts.BinDir != "" {
		p := filepath.Join(b.opts.BinDir, name)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("local backend: %s not found in --bin-dir %s (run make build)", name, b.opts.BinDir)
		}
		return p, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("local backend: the runtime's %s binary is neither beside the launcher nor on $PATH (run make build, or pass --bin-dir)", name)
	}
	return p, nil
}

// tlsDir is the folder of the job's TLS files in its state folder.
const tlsDir = "tls"

// newInstance returns a new identity for a submission of job name.
func newInstance(name string) (string, error) {
	var nonce [12]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return "", fmt.Errorf("local backend: instance nonce: %w", err)
	}
	return name + "/" + hex.EncodeToString(nonce[:]), nil
}

func writeState(dir string, st *state) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "state.json.tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("local backend: %w", err)
	}
	return os.Rename(tmp, filepath.Join(dir, "state.json"))
}

func (b *Backend) readState(name string) (*state, error) {
	if job.ValidateName(name) != nil {
		return nil, backend.NotFound(name, "this machine")
	}
	data, err := os.ReadFile(filepath.Join(b.dir(name), "state.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, backend.NotFound(name, "this machine (local state in "+b.opts.StateDir+")")
	}
	if err != nil {
		return nil, fmt.Errorf("local backend: %w", err)
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("local backend: %s: %w", filepath.Join(b.dir(name), "state.json"), err)
	}
	return &st, nil
}
