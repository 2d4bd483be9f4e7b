package trace

import (
	"encoding/json"
	"strconv"
	"testing"
)

// FedScale's client_device_capacity has about 500k entries.
const benchClients = 500_000

func BenchmarkParseCapacities500kPickle(b *testing.B) {
	d, _ := syntheticCapacities(benchClients)
	data := pickle2(d)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		caps, err := ParseCapacities(data, "bench")
		if err != nil || len(caps) != benchClients {
			b.Fatal(err, len(caps))
		}
	}
}

func BenchmarkParseCapacities500kJSON(b *testing.B) {
	_, caps := syntheticCapacities(benchClients)
	m := make(map[string]map[string]float64, len(caps))
	for k, c := range caps {
		m[strconv.Itoa(k)] = map[string]float64{"computation": c.Computation, "communication": c.Communication}
	}
	data, err := json.Marshal(m)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		got, err := ParseCapacities(data, "bench")
		if err != nil || len(got) != benchClients {
			b.Fatal(err, len(got))
		}
	}
}

func BenchmarkParseBehaviors100kPickle(b *testing.B) {
	d, _ := syntheticBehaviors(100_000)
	data := pickle2(d)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		bs, err := ParseBehaviors(data, "bench")
		if err != nil || len(bs) != 100_000 {
			b.Fatal(err, len(bs))
		}
	}
}
