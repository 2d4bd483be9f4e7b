package cudalib

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fedscale/fedscale-go/internal/infratest"
	"github.com/fedscale/fedscale-go/runtime/model/cuda/kernels"
)

// ComputeCapabilities are the GPUs the backend is compiled for in the
// test: Volta (7.0) to Hopper (9.0).
var computeCapabilities = [][2]int{{7, 0}, {7, 5}, {8, 0}, {8, 6}, {8, 9}, {9, 0}}

// TestCompileKernels compiles the backend's kernels with NVRTC (the tool
// cache's, no GPU needed) for every compute capability from 7.0 to 9.0,
// with the options the backend uses: every kernel must be in the PTX, as
// an entry of its unmangled name.
func TestCompileKernels(t *testing.T) {
	n, err := LoadNVRTC(infratest.NVRTC(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("NVRTC %d.%d (%s), architectures %v", n.Major, n.Minor, n.Path, n.Archs())
	names := kernels.Names()
	entry := regexp.MustCompile(`(?m)^\.visible \.entry (\w+)\(`)
	for _, cc := range computeCapabilities {
		t.Run(fmt.Sprintf("sm_%d%d", cc[0], cc[1]), func(t *testing.T) {
			major, minor, err := n.Arch(cc[0], cc[1])
			if err != nil || major != cc[0] || minor != cc[1] {
				t.Fatalf("Arch(%d.%d) = %d.%d, %v; NVRTC %d.%d should know it", cc[0], cc[1], major, minor, err, n.Major, n.Minor)
			}
			ptx, err := n.Compile(kernels.Source, kernels.File, kernels.Options(major, minor))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range entry.FindAllStringSubmatch(string(ptx), -1) {
				got = append(got, m[1])
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(names))
			if !slices.Equal(got, want) {
				t.Errorf("PTX entries %v, want %v", got, want)
			}
			if want := fmt.Sprintf(".target sm_%d%d", cc[0], cc[1]); !strings.Contains(string(ptx), want) {
				t.Errorf("PTX does not say %s", want)
			}
		})
	}
	// A compile error comes back with NVRTC's log, naming the file.
	_, err = n.Compile("extern \"C\" __global__ void k() { undeclared(); }", "bad.cu", kernels.Options(7, 0))
	if err == nil || !strings.Contains(err.Error(), "bad.cu") || !strings.Contains(err.Error(), "undeclared") {
		t.Errorf("bad source: %v", err)
	}
	if _, _, err := n.Arch(3, 5); err == nil {
		t.Error("compute capability 3.5 accepted")
	}
	if major, minor, err := n.Arch(99, 0); err != nil || major*10+minor != n.Archs()[len(n.Archs())-1] {
		t.Errorf("a future GPU gets %d.%d, %v; want NVRTC's newest", major, minor, err)
	}
}
