package docker

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/fedscale/fedscale-go/launcher/job"
)

// TestPlaces: which engine each process of a job runs on, by the rules of
// engines.go.
func TestPlaces(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///default.sock")
	const def = "unix:///default.sock"
	for _, tc := range []struct {
		name  string
		top   string            // the job file's top-level keys
		flags map[string]string // --docker-engine
		want  []string          // host=engine per process, aggregator first
		multi bool
	}{
		{"no hosts", "num_executors: 2\n", nil, []string{"=" + def, "=" + def, "=" + def}, false},
		{"localhost", "ps_ip: localhost\nworker_ips: ['127.0.0.1:[2]']\n", nil,
			[]string{"localhost=" + def, "127.0.0.1=" + def, "127.0.0.1=" + def}, false},
		{"one other host", "ps_ip: 10.0.0.1\nworker_ips: ['10.0.0.1:[1]', 'localhost:[1]']\n", nil,
			[]string{"10.0.0.1=" + def, "10.0.0.1=" + def, "localhost=" + def}, false},
		{"two hosts over ssh", "ps_ip: 10.0.0.1\nworker_ips: ['10.0.0.2:[2]']\nauth: {ssh_user: fed}\n", nil,
			[]string{"10.0.0.1=ssh://fed@10.0.0.1", "10.0.0.2=ssh://fed@10.0.0.2", "10.0.0.2=ssh://fed@10.0.0.2"}, true},
		{"no ssh user", "ps_ip: a\nworker_ips: ['b:[1]']\n", nil, []string{"a=ssh://a", "b=ssh://b"}, true},
		{"job file map", "ps_ip: a\nworker_ips: ['b:[1]']\ndocker_engines: {a: unix:///a.sock, b: ctx-b}\n", nil,
			[]string{"a=unix:///a.sock", "b=ctx-b"}, true},
		{"flag wins", "ps_ip: a\nworker_ips: ['b:[1]']\ndocker_engines: {a: unix:///a.sock, b: ctx-b}\n",
			map[string]string{"b": "tcp://10.0.0.9:2375"}, []string{"a=unix:///a.sock", "b=tcp://10.0.0.9:2375"}, true},
		{"map names one host", "ps_ip: localhost\nworker_ips: ['b:[1]']\ndocker_engines: {b: unix:///b.sock}\n", nil,
			[]string{"localhost=" + def, "b=unix:///b.sock"}, true},
		{"one engine for all", "ps_ip: a\nworker_ips: ['b:[1]']\ndocker_engines: {a: unix:///x.sock, b: unix:///x.sock}\n", nil,
			[]string{"a=unix:///x.sock", "b=unix:///x.sock"}, false},
		{"executors past worker_ips join the aggregator", "ps_ip: a\nworker_ips: ['b:[1]']\nnum_executors: 1\ndocker_engines: {a: unix:///a.sock}\n", nil,
			[]string{"a=unix:///a.sock", "b=ssh://b"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := job.Parse([]byte(tc.top+"use_container: docker\njob_conf:\n  - job_name: places\n  - model: logistic\n"), "conf.yml",
				job.Options{AggregatorImage: "a:1", ExecutorImage: "e:1", RemoteEngine: true})
			if err != nil {
				t.Fatal(err)
			}
			if tc.multi {
				s.Network = "fedscale-net"
			}
			b, err := New(Options{Engines: tc.flags})
			if err != nil {
				t.Fatal(err)
			}
			p, err := b.plan(s)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range p.Containers {
				got = append(got, c.Place.host+"="+c.Place.spec)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("places %v, want %v", got, tc.want)
			}
			if p.Multi != tc.multi {
				t.Errorf("multi %v, want %v", p.Multi, tc.multi)
			}
			labels := p.Containers[0].Config.Labels
			if _, ok := labels[LabelEngines]; ok != tc.multi {
				t.Errorf("label %s on a job with multi=%v: %q", LabelEngines, tc.multi, labels[LabelEngines])
			}
			if tc.multi {
				specs, err := parseEngineSet(labels[LabelEngines])
				if err != nil {
					t.Fatal(err)
				}
				for _, w := range tc.want {
					if _, spec, _ := strings.Cut(w, "="); !slices.Contains(specs, spec) {
						t.Errorf("label %q lacks engine %s", labels[LabelEngines], spec)
					}
				}
			}
		})
	}
}

// A job on several engines needs container_network: one error naming it.
func TestMultiNeedsNetwork(t *testing.T) {
	s, err := job.Parse([]byte("use_container: docker\nps_ip: a\nworker_ips: ['b:[1]']\njob_conf:\n  - job_name: nonet\n  - model: logistic\n"), "conf.yml",
		job.Options{AggregatorImage: "a:1", ExecutorImage: "e:1", RemoteEngine: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.plan(s); err == nil || !strings.Contains(err.Error(), "set container_network to an attachable overlay") {
		t.Errorf("plan without container_network: %v", err)
	}
}

// The engines label is read back from an engine: malformed or oversized
// values are errors, not engines to dial.
func TestParseEngineSet(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []string
		wantErr string
	}{
		{"", nil, ""},
		{"a=unix:///a.sock b=ssh://fed@b a2=unix:///a.sock", []string{"unix:///a.sock", "ssh://fed@b"}, ""},
		{"=ctx-1", []string{"ctx-1"}, ""},
		{"a", nil, `"a" is not host=engine`},
		{"a=-H", nil, `"a=-H" is not host=engine`},
		{"a=ftp://x", nil, `is not host=engine`},
		{strings.Repeat("a=ctx ", maxLabelEngines+1), nil, fmt.Sprintf("more than %d", maxLabelEngines)},
	} {
		got, err := parseEngineSet(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%.40q: %v, want an error containing %s", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%q: %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}
