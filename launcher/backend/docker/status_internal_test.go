package docker

import (
	"net/netip"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// TestHealthAddrLabel: the health-port label is read from the container,
// so a value outside 1..65535 must be refused, not wrapped into uint16
// (70000 would have become 4464, a port the container does publish here).
func TestHealthAddrLabel(t *testing.T) {
	bound, _ := network.PortFrom(4464, network.TCP)
	for _, tc := range []struct {
		label  string
		want   string
		wantOK bool
	}{
		{"4464", "127.0.0.1:31000", true},
		{"70000", "", false},
		{"-61072", "", false},
		{"0", "", false},
		{"", "", false},
	} {
		c := ctr{info: container.InspectResponse{
			Config: &container.Config{Labels: map[string]string{LabelHealthPort: tc.label}},
			NetworkSettings: &container.NetworkSettings{Ports: network.PortMap{
				bound: {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "31000"}},
			}},
		}}
		got, ok := healthAddr(c)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("label %q: healthAddr = %q, %v; want %q, %v", tc.label, got, ok, tc.want, tc.wantOK)
		}
	}
}
