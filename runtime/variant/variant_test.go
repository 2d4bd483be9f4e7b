package variant

import (
	"strings"
	"testing"

	"github.com/fedscale/fedscale-go/runtime/version"
)

func TestFromTag(t *testing.T) {
	for _, tc := range []struct {
		tag, variant, ver, release string
	}{
		{"v1.2.3", "cpu", "", "v1.2.3"},
		{"v1.2.3-cuda12.4", "cuda", "12.4", "v1.2.3"},
		{"v1.2.3-rc.1-cuda11.8", "cuda", "11.8", "v1.2.3-rc.1"},
		{"v0-cuda12", "cuda", "12", "v0"},
		{"v1-cudafoo", "cpu", "", "v1-cudafoo"},
		{"v1-cuda12.", "cpu", "", "v1-cuda12."},
		{"v1-cuda", "cpu", "", "v1-cuda"},
	} {
		v, ver, rel := FromTag(tc.tag)
		if v.Name != tc.variant || ver != tc.ver || rel != tc.release {
			t.Errorf("FromTag(%q) = %s %q %q, want %s %q %q", tc.tag, v.Name, ver, rel, tc.variant, tc.ver, tc.release)
		}
	}
}

// TestTable: every row round-trips through its tag, names are unique, only
// the CPU variant is unversioned and static, and the CUDA row carries the
// release's CUDA version.
func TestTable(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range All {
		if seen[v.Name] || v.Target == "" {
			t.Errorf("row %+v: duplicate name or no Dockerfile target", v)
		}
		seen[v.Name] = true
		if got, err := Lookup(v.Name); err != nil || got.Name != v.Name {
			t.Errorf("Lookup(%q) = %v, %v", v.Name, got.Name, err)
		}
		ver := v.Release
		back, bver, rel := FromTag("v1.0.0" + v.Suffix(ver))
		if back.Name != v.Name || bver != ver || rel != "v1.0.0" {
			t.Errorf("%s: tag round trip gave %s %q %q", v.Name, back.Name, bver, rel)
		}
		if v.Versioned() != (v.Release != "") || v.Versioned() != (v.VersionLabel != "") {
			t.Errorf("%s: a versioned variant needs a release version and a version label", v.Name)
		}
	}
	if All[0].Name != "cpu" || !CPU.Static || CUDA.Static || CPU.BasePins != "" {
		t.Error("the CPU variant must come first, be static and build on scratch")
	}
	if CUDA.Release != version.CUDA || CUDA.Suffix(CUDA.Release) != "-cuda"+version.CUDA {
		t.Errorf("CUDA row: release %q", CUDA.Release)
	}
	if l := CUDA.Labels("12.4"); l["dev.fedscale.cuda.version"] != "12.4" || CPU.Labels("") != nil {
		t.Errorf("labels: %v", l)
	}
	if _, err := Lookup("rocm"); err == nil || !strings.Contains(err.Error(), "known: cpu, cuda") {
		t.Errorf("Lookup(rocm): %v", err)
	}
}
