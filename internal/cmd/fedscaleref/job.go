package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// The paths femnist_k8s.yml has inside FedScale's containers.
const (
	containerData = "/FedScale/benchmark/dataset/data"
	containerLogs = "/FedScale/benchmark"
)

var (
	logPathLine    = regexp.MustCompile(`^(    - log_path: )` + regexp.QuoteMeta(containerLogs) + `\b`)
	localStepsLine = regexp.MustCompile(`^(    - local_steps: )5\b`)
	roundsLine     = regexp.MustCompile(`^(    - rounds: )[0-9]+`)
)

// rewriteJob adapts FedScale's femnist_k8s.yml to this machine, line by
// line so its comments and layout stay: the container's data folder
// becomes data, log_path becomes logPath, local_steps 5 becomes 20 and,
// when rounds is not "", rounds becomes rounds. Every rewrite must happen
// once: a job file that changed upstream is an error naming the key.
func rewriteJob(src []byte, data, logPath, rounds string) ([]byte, error) {
	var out bytes.Buffer
	done := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(src))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case logPathLine.MatchString(line):
			line = logPathLine.ReplaceAllString(line, "${1}"+logPath)
			done["log_path"]++
		case localStepsLine.MatchString(line):
			line = localStepsLine.ReplaceAllString(line, "${1}20")
			done["local_steps"]++
		case rounds != "" && roundsLine.MatchString(line):
			line = roundsLine.ReplaceAllString(line, "${1}"+rounds)
			done["rounds"]++
		}
		if strings.Contains(line, containerData) {
			line = strings.ReplaceAll(line, containerData, data)
			done["data"]++
		}
		out.WriteString(line + "\n")
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	want := []string{"log_path", "local_steps"}
	if rounds != "" {
		want = append(want, "rounds")
	}
	for _, k := range want {
		if done[k] != 1 {
			return nil, fmt.Errorf("job_conf %s: %d lines to rewrite, want 1 (has femnist_k8s.yml changed?)", k, done[k])
		}
	}
	if done["data"] == 0 {
		return nil, fmt.Errorf("no %s path to point at the local data (has femnist_k8s.yml changed?)", containerData)
	}
	return out.Bytes(), nil
}

// fedscaleFlags is FedScale's command line for a job file, as its
// docker/driver.py builds it for a local job: --time_stamp ref and --ps_ip
// 127.0.0.1 first, then every job_conf entry as --key value in file order
// (a repeated key keeps its first place and takes the last value, as a
// Python dict update does). Values are as Python's str() prints what
// PyYAML read: plain true/false/yes/no/on/off as True or False, null as
// None, anything else its text (argparse parses it).
func fedscaleFlags(jobFile []byte) ([]string, error) {
	var doc struct {
		JobConf []yaml.Node `yaml:"job_conf"`
	}
	if err := yaml.Unmarshal(jobFile, &doc); err != nil {
		return nil, err
	}
	if len(doc.JobConf) == 0 {
		return nil, errors.New("no job_conf entries")
	}
	keys := []string{"time_stamp", "ps_ip"}
	vals := map[string]string{"time_stamp": "ref", "ps_ip": "127.0.0.1"}
	for i, e := range doc.JobConf {
		if e.Kind != yaml.MappingNode || len(e.Content) != 2 || e.Content[1].Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("job_conf entry %d (line %d): want one key with a plain value", i+1, e.Line)
		}
		k := e.Content[0].Value
		if _, seen := vals[k]; !seen {
			keys = append(keys, k)
		}
		vals[k] = pythonStr(e.Content[1])
	}
	var flags []string
	for _, k := range keys {
		flags = append(flags, "--"+k, vals[k])
	}
	return flags, nil
}

// pythonStr is str() of what PyYAML (YAML 1.1) reads from a scalar.
func pythonStr(n *yaml.Node) string {
	if n.Style != 0 { // quoted: a string
		return n.Value
	}
	switch strings.ToLower(n.Value) {
	case "true", "yes", "on":
		return "True"
	case "false", "no", "off":
		return "False"
	case "", "~", "null":
		return "None"
	}
	return n.Value
}
