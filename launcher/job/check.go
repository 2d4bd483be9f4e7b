package job

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// EnvHome is set to ContainerHome in every container, so $FEDSCALE_HOME in
// a job file's job_conf paths means the image's FedScale folder there.
const EnvHome = "FEDSCALE_HOME"

// checkVars fails, naming the variable and the key, when a path of the job
// file refers to an environment variable that is not set: the runtime's
// parser leaves such a reference as written (Python's os.path.expandvars),
// which would make "$FEDSCALE_HOME/benchmark" a literal folder name or
// hostPath. data_path is read here, on the submitting machine; the
// job_conf paths are read by the processes, which in containers have
// $FEDSCALE_HOME and nothing else of this machine's environment.
//
// A variable set here but not in a container is expanded here and so
// cannot be seen: the runtime in the container reports that path instead.
func (s *Spec) checkVars() error {
	type path struct{ key, value string }
	paths := []path{{"data_path", s.Job.DataPath}}
	c := &s.Job.Conf
	for _, p := range []path{
		{"log_path", c.LogPath}, {"data_dir", c.DataDir}, {"data_map_file", c.DataMapFile},
		{"device_conf_file", c.DeviceConfFile}, {"device_avail_file", c.DeviceAvailFile},
		{"model_init_file", c.ModelInitFile}, {"tls_ca", c.TLSCA}, {"tls_cert", c.TLSCert}, {"tls_key", c.TLSKey},
	} {
		paths = append(paths, path{"job_conf " + p.key, p.value})
	}
	for _, p := range paths {
		for _, v := range unsetVars(p.value) {
			if v == EnvHome && s.Backend != BackendLocal && p.key != "data_path" {
				continue
			}
			return fmt.Errorf("%s: %s %q uses $%s, which is not set in this environment; set it (export %s=...) or write the path out", s.File, p.key, p.value, v, v)
		}
	}
	return nil
}

// unsetVars lists the variables $NAME or ${NAME} in s that the environment
// does not set, in order of appearance, each once.
func unsetVars(s string) []string {
	var out []string
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			continue
		}
		var name string
		if i+1 < len(s) && s[i+1] == '{' {
			end := strings.IndexByte(s[i+2:], '}')
			if end <= 0 {
				continue
			}
			name = s[i+2 : i+2+end]
		} else {
			j := i + 1
			for j < len(s) && isNameByte(s[j]) {
				j++
			}
			name = s[i+1 : j]
		}
		if name == "" {
			continue
		}
		if _, ok := os.LookupEnv(name); !ok && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// checkDataPath fails unless data_path, when the job file has one, is a
// folder on this machine: the local backend's processes and a Docker
// engine here read it (on Kubernetes it is on the nodes, with a remote
// engine on the engine's host: neither is looked for here).
func (s *Spec) checkDataPath(remoteEngine bool) error {
	if s.DataPath == "" || s.Backend == BackendK8s || s.Backend == BackendDocker && remoteEngine {
		return nil
	}
	if err := isFolder(s.DataPath); err != nil {
		return fmt.Errorf("%s: data_path %s: %w", s.File, s.DataPath, err)
	}
	return nil
}

// Preflight checks, before anything starts, what the job's processes will
// read from this machine. Local backend: job_conf data_dir must be a
// folder here (an error). Docker with the engine on this machine
// (remoteEngine false): a data_dir under data_path's mount
// (ContainerDataPath, or data_path itself as this machine expanded it)
// must be a folder in data_path; as the containers see data_dir only
// through the job file, this is a warning. Kubernetes nodes and a remote
// engine's host are not looked at.
func (s *Spec) Preflight(remoteEngine bool) (warnings []string, err error) {
	dir := s.Job.Conf.DataDir
	switch {
	case s.Backend == BackendLocal:
		if err := isFolder(dir); err != nil {
			return nil, fmt.Errorf("%s: job_conf data_dir %s: %w; the job's processes read it on this machine", s.File, dir, err)
		}
	case s.Backend == BackendDocker && !remoteEngine && s.DataPath != "":
		host, ok := s.hostPath(dir)
		if !ok {
			break
		}
		if err := isFolder(host); err != nil {
			warnings = append(warnings, fmt.Sprintf("%s: job_conf data_dir %s is %s through data_path's mount: %v", s.File, dir, host, err))
		}
	}
	return warnings, nil
}

// hostPath maps a path as a container sees it onto data_path on the
// engine's host, when it lies in the mount.
func (s *Spec) hostPath(p string) (string, bool) {
	home := "$" + EnvHome // left as written here when unset; the container sets it
	if strings.HasPrefix(p, home+"/") || strings.HasPrefix(p, "${"+EnvHome+"}/") {
		p = ContainerHome + p[strings.IndexByte(p, '/'):]
	}
	for _, mount := range []string{ContainerDataPath, s.DataPath} {
		if rel, err := filepath.Rel(mount, filepath.Clean(p)); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			return filepath.Join(s.DataPath, rel), true
		}
	}
	return "", false
}

// isFolder is nil for a folder; else the stat error, or "not a folder".
func isFolder(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return errors.New("not a folder")
	}
	return nil
}
