package data

import (
	"slices"
	"testing"
)

// The expected values were printed by CPython 3 (random.Random).
func TestPyRandomMatchesCPython(t *testing.T) {
	r := newPyRandom(10)
	for i, want := range []uint32{2454155475, 139951793, 1842064464} {
		if got := r.uint32(); got != want {
			t.Fatalf("Random(10).getrandbits(32) #%d = %d, want %d", i, got, want)
		}
	}
	r = newPyRandom(1<<40 + 7) // a seed of two 32-bit words
	for i, want := range []uint32{2635837658, 3209733218} {
		if got := r.uint32(); got != want {
			t.Fatalf("Random(2**40+7).getrandbits(32) #%d = %d, want %d", i, got, want)
		}
	}
	x := make([]int32, 20)
	for i := range x {
		x[i] = int32(i)
	}
	newPyRandom(10).shuffle(x)
	if want := []int32{14, 11, 5, 6, 19, 8, 9, 12, 16, 2, 10, 4, 17, 7, 3, 0, 15, 13, 1, 18}; !slices.Equal(x, want) {
		t.Errorf("Random(10).shuffle(range(20)) = %v, want %v", x, want)
	}
}

// UniformPartition is FedScale's: CIFAR-10's 50,000 training samples
// shuffled by random.Random(10), cut into equal parts, the remainder
// dropped (int(1/3 * 50000) = 16666 per client).
func TestUniformPartitionMatchesFedScale(t *testing.T) {
	parts, err := UniformPartition(50000, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 3 {
		t.Fatalf("%d parts", len(parts))
	}
	for k, p := range parts {
		if len(p) != 16666 {
			t.Errorf("part %d has %d samples", k, len(p))
		}
	}
	// Python: x = list(range(50000)); Random(10).shuffle(x);
	// x[:5], x[-5:] and sum(i*v for i, v in enumerate(x)) % 1000003.
	if want := []int32{3804, 34900, 9630, 32271, 38997}; !slices.Equal(parts[0][:5], want) {
		t.Errorf("first samples %v, want %v", parts[0][:5], want)
	}
	all := append(append(append([]int32(nil), parts[0]...), parts[1]...), parts[2]...)
	var sum int64
	for i, v := range all {
		sum += int64(i) * int64(v)
	}
	// The remainder, 50000 - 3*16666 = 2 samples, is the shuffle's last
	// two: 2135 and 37447.
	sum += int64(49998)*2135 + int64(49999)*37447
	if sum%1000003 != 415272 {
		t.Errorf("weighted sum mod 1000003 = %d, want 415272", sum%1000003)
	}
	seen := map[int32]bool{}
	for _, v := range all {
		if seen[v] {
			t.Fatalf("sample %d in two parts", v)
		}
		seen[v] = true
	}
	if seen[2135] || seen[37447] {
		t.Error("the remainder should belong to no client")
	}

	for _, tc := range []struct{ n, clients int }{{10, 0}, {3, 4}, {-1, 2}} {
		if _, err := UniformPartition(tc.n, tc.clients); err == nil {
			t.Errorf("UniformPartition(%d, %d): no error", tc.n, tc.clients)
		}
	}
}
