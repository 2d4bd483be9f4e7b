package docker

import (
	"fmt"
	"io"
	"net"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/container"
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
	Labels map[string]string `yaml:"labels,omitempty"`
}

type planCtr struct {
	Name    string            `yaml:"name"`
	Engine  string            `yaml:"engine,omitempty"`
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

// restartString is a restart policy as docker run's --restart writes it.
func restartString(r container.RestartPolicy) string {
	if r.Name == container.RestartPolicyOnFailure && r.MaximumRetryCount > 0 {
		return fmt.Sprintf("%s:%d", r.Name, r.MaximumRetryCount)
	}
	return string(r.Name)
}

// Plan writes, as YAML, the network and the containers Submit would
// create. It needs no engine.
func (b *Backend) Plan(w io.Writer, s *job.Spec) error {
	p, err := b.plan(s)
	if err != nil {
		return err
	}
	first := p.Containers[0].Place
	doc := planDoc{
		Backend: b.Name(),
		Engine:  first.spec + " (" + first.from + ")",
		Job:     s.Name,
		Network: planNet{
			Name:   p.Network.Name,
			Driver: "bridge",
			Note:   "reused if it exists; else created with these labels (an attachable overlay when the engine is a swarm manager) and removed by stop",
			Labels: p.Network.Labels,
		},
	}
	if p.Multi {
		doc.Engine = "one per host: see each container's engine"
		doc.Network = planNet{Name: p.Network.Name, Driver: "overlay",
			Note: "must exist: an attachable overlay of the swarm the engines are in (docker network create --driver=overlay --attachable " + p.Network.Name + " on a manager); not created or removed"}
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
			Restart: restartString(c.Host.RestartPolicy),
		}
		if p.Multi {
			pc.Engine = c.Place.spec + " (" + c.Place.from + ")"
			if w := c.Place.what(c.Proc.Rank); w != "" {
				pc.Engine = c.Place.spec + " (" + w + ", from " + c.Place.from + ")"
			}
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
				case host == "0" && p.Multi:
					host, what = "<ephemeral>", "health; not probed: the job spans engines"
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
