package docker

import (
	"fmt"
	"io"
	"net"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/fedscale/fedscale-go/launcher/job"
	"github.com/fedscale/fedscale-go/runtime/mtls"
)

// planDoc is what Plan prints, as YAML.
type planDoc struct {
	Backend    string    `yaml:"backend"`
	Engine     string    `yaml:"engine"`
	Job        string    `yaml:"job"`
	Network    planNet   `yaml:"network"`
	Containers []planCtr `yaml:"containers"`
}

type planNet struct {
	Name   string            `yaml:"name"`
	Driver string            `yaml:"driver"`
	Note   string            `yaml:"note"`
	Labels map[string]string `yaml:"labels"`
}

type planCtr struct {
	Name    string            `yaml:"name"`
	Image   string            `yaml:"image"`
	Args    []string          `yaml:"args,flow"`
	Env     []string          `yaml:"env"`
	User    string            `yaml:"user"`
	Labels  map[string]string `yaml:"labels"`
	Aliases []string          `yaml:"aliases,omitempty,flow"`
	Mounts  []string          `yaml:"mounts,omitempty"`
	Files   []string          `yaml:"files"`
	Ports   []string          `yaml:"ports"`
	GPUs    string            `yaml:"gpus,omitempty"`
	Restart string            `yaml:"restart"`
}

// Plan writes, as YAML, the network and the containers Submit would
// create. It needs no engine.
func (b *Backend) Plan(w io.Writer, s *job.Spec) error {
	p, err := plan(s, b.hostIP)
	if err != nil {
		return err
	}
	doc := planDoc{
		Backend: b.Name(),
		Engine:  b.host + " (" + b.from + ")",
		Job:     s.Name,
		Network: planNet{
			Name:   p.Network.Name,
			Driver: "bridge",
			Note:   "reused if it exists; else created with these labels (an attachable overlay when the engine is a swarm manager) and removed by stop",
			Labels: p.Network.Labels,
		},
	}
	for _, c := range p.Containers {
		pc := planCtr{
			Name:    c.Name,
			Image:   c.Config.Image,
			Args:    c.Config.Cmd,
			Env:     c.Config.Env,
			User:    c.Config.User,
			Labels:  c.Config.Labels,
			Aliases: c.Net.EndpointsConfig[p.Network.Name].Aliases,
			Files: []string{fmt.Sprintf("%s (%d bytes, mode 0644, copied in before start)", job.ContainerConfigPath, len(s.Config)),
				fmt.Sprintf("%s/{%s} (the job's CA certificate and this process's certificate and key, mode 0400, made at submit)",
					job.ContainerTLSDir, strings.Join(mtls.FileNames(c.Proc.Rank), ","))},
			Restart: string(c.Host.RestartPolicy.Name),
		}
		if pc.User == "" {
			pc.User = "(the image's user)"
		}
		for _, m := range c.Host.Mounts {
			pc.Mounts = append(pc.Mounts, fmt.Sprintf("%s:%s (%s, read-write)", m.Source, m.Target, m.Type))
		}
		for port, bs := range c.Host.PortBindings {
			for _, bd := range bs {
				host, what := bd.HostPort, "gRPC"
				switch {
				case host == "0":
					host, what = "<ephemeral>", "health, probed by wait and status"
				case port == c.HealthPort:
					what = "health"
				}
				pc.Ports = append(pc.Ports, fmt.Sprintf("%s->%s (%s)", net.JoinHostPort(bd.HostIP.String(), host), port, what))
			}
		}
		sort.Strings(pc.Ports)
		for _, d := range c.Host.DeviceRequests {
			if len(d.DeviceIDs) > 0 {
				pc.GPUs = "gpu " + strings.Join(d.DeviceIDs, ",")
			} else {
				pc.GPUs = fmt.Sprintf("any %d gpu", d.Count)
			}
		}
		doc.Containers = append(doc.Containers, pc)
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return err
	}
	return enc.Close()
}
