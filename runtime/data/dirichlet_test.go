package data

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestDirichletPartition(t *testing.T) {
	labels := make([]uint8, 3000)
	for i := range labels {
		labels[i] = uint8(i * 7 % 10) // 10 classes, interleaved
	}
	tests := []struct {
		clients, minSamples int
		alpha               float64
	}{
		{10, 20, 0.5}, {10, 0, 0.01}, {50, 5, 1}, {1, 0, 0.5}, {3, 900, 100},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("clients=%d,alpha=%v,min=%d", tc.clients, tc.alpha, tc.minSamples), func(t *testing.T) {
			parts, err := Dirichlet(labels, tc.clients, tc.alpha, tc.minSamples, 42)
			if err != nil {
				t.Fatal(err)
			}
			if len(parts) != tc.clients {
				t.Fatalf("%d parts", len(parts))
			}
			seen := make([]int, len(labels))
			for k, p := range parts {
				if len(p) < tc.minSamples {
					t.Errorf("client %d has %d samples < %d", k, len(p), tc.minSamples)
				}
				for j, i := range p {
					if j > 0 && p[j-1] >= i {
						t.Fatalf("client %d indices not increasing", k)
					}
					seen[i]++
				}
			}
			for i, c := range seen {
				if c != 1 {
					t.Fatalf("sample %d assigned %d times", i, c)
				}
			}
			again, _ := Dirichlet(labels, tc.clients, tc.alpha, tc.minSamples, 42)
			if !reflect.DeepEqual(parts, again) {
				t.Error("same seed gave a different partition")
			}
			if tc.clients > 1 {
				other, _ := Dirichlet(labels, tc.clients, tc.alpha, tc.minSamples, 43)
				if reflect.DeepEqual(parts, other) {
					t.Error("different seeds gave the same partition")
				}
			}
		})
	}
}

// With a small alpha most of a client's samples come from few classes;
// with a large one the classes are close to even.
func TestDirichletSkew(t *testing.T) {
	labels := make([]int, 10000)
	for i := range labels {
		labels[i] = i % 10
	}
	topShare := func(alpha float64) float64 {
		parts, err := Dirichlet(labels, 20, alpha, 0, 7)
		if err != nil {
			t.Fatal(err)
		}
		sum, n := 0.0, 0
		for _, p := range parts {
			if len(p) == 0 {
				continue
			}
			var count [10]int
			for _, i := range p {
				count[labels[i]]++
			}
			top := 0
			for _, c := range count {
				top = max(top, c)
			}
			sum += float64(top) / float64(len(p))
			n++
		}
		return sum / float64(n)
	}
	if s := topShare(0.05); s < 0.6 {
		t.Errorf("alpha 0.05: mean top-class share %.2f, want a skewed split", s)
	}
	if s := topShare(1000); s > 0.2 {
		t.Errorf("alpha 1000: mean top-class share %.2f, want close to 0.1", s)
	}
}

func TestDirichletErrors(t *testing.T) {
	labels := make([]int32, 100)
	tests := []struct {
		name       string
		labels     []int32
		clients    int
		alpha      float64
		minSamples int
		want       string
	}{
		{"no clients", labels, 0, 1, 0, "0 clients"},
		{"zero alpha", labels, 2, 0, 0, "alpha 0"},
		{"NaN alpha", labels, 2, nan(), 0, "alpha NaN"},
		{"negative min", labels, 2, 1, -1, "negative"},
		{"infeasible min", labels, 11, 1, 10, "11 clients x 10 min samples exceeds 100 samples"},
		{"negative label", []int32{0, -3}, 1, 1, 0, "sample 1 has negative label -3"},
		{"too skewed", append(make([]int32, 50), 1), 5, 0.001, 10, "use a larger alpha"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Dirichlet(tc.labels, tc.clients, tc.alpha, tc.minSamples, 1)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func nan() float64 { z := 0.0; return z / z }
