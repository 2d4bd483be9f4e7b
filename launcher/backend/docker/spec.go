package docker

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"

	"github.com/fedscale/fedscale-go/launcher/job"
	"github.com/fedscale/fedscale-go/runtime/config"
)

// LabelHealthPort records, on each container, the port of its process's
// /healthz, /readyz and /metrics inside the container, so status and wait
// find the published host port without re-deriving it.
const LabelHealthPort = "fedscale.dev/health-port"

// LabelConfJobName on the aggregator is job_conf job_name (its log folder
// name), which the DNS-safe job name may differ from.
const LabelConfJobName = "fedscale.dev/job-conf-name"

// LabelHost records, on each container, the job's host it runs for (its
// ps_ip or worker_ips host; absent when the job names none).
const LabelHost = "fedscale.dev/host"

// LabelEngines records, on each container, every engine of its job as
// "host=engine" pairs joined by spaces, so stop, status and logs given a
// job name find the job's other engines from any one of them.
const LabelEngines = "fedscale.dev/engines"

// AggregatorAlias is the aggregator's extra name on the job's network.
const AggregatorAlias = "aggregator"

// loopback is where health ports are published for probing.
var loopback = netip.MustParseAddr("127.0.0.1")

// jobPlan is everything Submit creates for a spec; Plan prints it.
type jobPlan struct {
	Network    netPlan
	Containers []ctrPlan
	// Multi: the containers are on more than one engine, joined by
	// Network, an attachable overlay that must exist.
	Multi bool
}

type netPlan struct {
	Name   string
	Labels map[string]string // set only on a network we create
}

// ctrPlan is one container, both as the engine's create request and in
// the terms Plan prints.
type ctrPlan struct {
	Proc   job.Process
	Name   string
	Config *container.Config
	Host   *container.HostConfig
	Net    *network.NetworkingConfig
	Place  place
	// HealthPort is the container's health port, published on 127.0.0.1
	// with an ephemeral host port.
	HealthPort network.Port
}

// NetworkName is the network a job's containers join: the job file's
// container_network, else fedscale-<job>.
func NetworkName(s *job.Spec) string {
	if s.Network != "" {
		return s.Network
	}
	return "fedscale-" + s.Name
}

// ContainerName is the container of process p ("aggregator", "executor-2").
func ContainerName(jobName, process string) string { return jobName + "-" + process }

// plan builds the create requests for s. hostIP is where s.Ports are
// published.
func (b *Backend) plan(s *job.Spec) (*jobPlan, error) {
	hostIP := b.hostIP
	if err := job.ValidateName(s.Name); err != nil {
		return nil, err
	}
	if s.Job == nil {
		return nil, fmt.Errorf("job %q: the spec has no parsed job file", s.Name)
	}
	user, err := runAs(s.DataPath)
	if err != nil {
		return nil, err
	}
	jobFile := s.File
	if abs, err := filepath.Abs(s.File); err == nil && s.File != "" {
		jobFile = abs
	}
	p := &jobPlan{Network: netPlan{Name: NetworkName(s), Labels: s.Labels(nil)}}
	aggName := ContainerName(s.Name, "aggregator")
	procs := s.Processes(job.ContainerConfigPath, aggName, job.ContainerTLSDir)
	if err := config.CheckPorts(s.Ports, len(procs)-1); err != nil {
		return nil, fmt.Errorf("job %q: %w", s.Name, err)
	}
	places := b.places(s, procs)
	for _, pl := range places[1:] {
		p.Multi = p.Multi || pl.spec != places[0].spec
	}
	if p.Multi && s.Network == "" {
		return nil, fmt.Errorf("job %q: its hosts are on %d Docker engines (%s): set container_network to an attachable overlay network of the swarm they are in (docker network create --driver=overlay --attachable NAME on a manager)",
			s.Name, len(strings.Fields(engineSet(places))), engineSet(places))
	}
	engines := engineSet(places)
	for i, proc := range procs {
		name := ContainerName(s.Name, proc.Name)
		labels := s.Labels(&proc)
		if jobFile != "" {
			labels[job.AnnotationJobFile] = jobFile
		}
		labels[LabelHealthPort] = strconv.Itoa(proc.HealthPort)
		if p.Multi {
			// Only then: a one-engine job is found on whichever address
			// reaches its engine, which need not be the one used here.
			labels[LabelEngines] = engines
		}
		if places[i].host != "" {
			labels[LabelHost] = places[i].host
		}
		if proc.Component == "aggregator" {
			labels[LabelConfJobName] = s.Job.Conf.JobName
		}
		health, err := tcpPort(proc.HealthPort)
		if err != nil {
			return nil, fmt.Errorf("job %q: %s health port: %w", s.Name, proc.Name, err)
		}
		exposed := network.PortSet{health: {}}
		bindings := network.PortMap{health: {{HostIP: loopback, HostPort: "0"}}}
		if len(s.Ports) > 0 {
			// ports[0] is the aggregator's gRPC port, ports[i] executor
			// i's health port, as in the original driver.
			inner := proc.HealthPort
			if proc.Rank == 0 {
				inner = s.PsPort
			}
			cp, err := tcpPort(inner)
			if err != nil {
				return nil, fmt.Errorf("job %q: %s port: %w", s.Name, proc.Name, err)
			}
			if s.Ports[i] < 1 || s.Ports[i] > 65535 {
				return nil, fmt.Errorf("job %q: ports[%d] = %d is not a port", s.Name, i, s.Ports[i])
			}
			exposed[cp] = struct{}{}
			bindings[cp] = append(bindings[cp], network.PortBinding{HostIP: hostIP, HostPort: strconv.Itoa(s.Ports[i])})
		}
		cfg := &container.Config{
			Hostname:     name,
			User:         user,
			Env:          []string{job.EnvHome + "=" + job.ContainerHome},
			Cmd:          proc.Args,
			Image:        proc.Image,
			Labels:       labels,
			ExposedPorts: exposed,
		}
		hc := &container.HostConfig{
			NetworkMode:   container.NetworkMode(p.Network.Name),
			PortBindings:  bindings,
			RestartPolicy: restartPolicy(s, proc),
		}
		if s.DataPath != "" {
			hc.Mounts = []mount.Mount{{Type: mount.TypeBind, Source: s.DataPath, Target: job.ContainerDataPath}}
		}
		if s.UseCUDA && proc.Component == "executor" {
			dr := container.DeviceRequest{Capabilities: [][]string{{"gpu"}}}
			if proc.GPU >= 0 {
				dr.DeviceIDs = []string{strconv.Itoa(proc.GPU)}
			} else {
				dr.Count = 1
			}
			hc.DeviceRequests = []container.DeviceRequest{dr}
		}
		ep := &network.EndpointSettings{}
		if proc.Rank == 0 {
			ep.Aliases = []string{AggregatorAlias}
		}
		p.Containers = append(p.Containers, ctrPlan{
			Proc: proc, Name: name, Config: cfg, Host: hc, HealthPort: health, Place: places[i],
			Net: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{p.Network.Name: ep}},
		})
	}
	return p, nil
}

// restartPolicy restarts a failed executor's container in place up to
// s.ExecutorRestarts times (the engine backs off, doubling from 100 ms):
// the same container keeps its copied-in job file and TLS files, and the
// aggregator takes it back under its rank. The aggregator is not
// restarted: it would train again from round 0.
func restartPolicy(s *job.Spec, p job.Process) container.RestartPolicy {
	if p.Rank == 0 || s.ExecutorRestarts == 0 {
		return container.RestartPolicy{Name: container.RestartPolicyDisabled}
	}
	return container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: s.ExecutorRestarts}
}

func tcpPort(n int) (network.Port, error) {
	if n < 1 || n > 65535 {
		return network.Port{}, fmt.Errorf("%d is not a port", n)
	}
	p, ok := network.PortFrom(uint16(n), network.TCP)
	if !ok {
		return network.Port{}, fmt.Errorf("%d is not a port", n)
	}
	return p, nil
}
