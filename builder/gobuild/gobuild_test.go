package gobuild

import (
	"bytes"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/fedscale/fedscale-go/builder/platform"
	"github.com/fedscale/fedscale-go/runtime/variant"
)

// TestBuildReproducible compiles fsdata (the smallest runtime program) twice
// into different folders and for two platforms: same bytes each time, the
// version stamped, the build settings that make it reproducible recorded.
func TestBuildReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a program twice")
	}
	goCmd := "go" // go test puts its own toolchain first on PATH
	modDir, err := exec.Command(goCmd, "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatal(err)
	}
	ps, _ := platform.ParseList("linux/amd64,linux/arm64")
	build := func() []Binary {
		bins, err := Build(context.Background(), Options{
			ModuleDir: strings.TrimSpace(string(modDir)),
			Programs:  []Program{{Name: "fsdata", ImportPath: "./runtime/cmd/fsdata"}},
			Platforms: ps,
			Version:   "v9.9.9-test",
			OutDir:    t.TempDir(),
			Go:        goCmd,
		})
		if err != nil {
			t.Fatal(err)
		}
		return bins
	}
	a, b := build(), build()
	if len(a) != 2 {
		t.Fatalf("%d binaries, want 2", len(a))
	}
	for i := range a {
		if a[i].SHA256 != b[i].SHA256 {
			t.Errorf("%s: two builds differ: %s vs %s", a[i].Platform, a[i].SHA256, b[i].SHA256)
		}
		settings := map[string]string{}
		for _, s := range a[i].Info.Settings {
			settings[s.Key] = s.Value
		}
		if settings["GOARCH"] != a[i].Platform.Arch || settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" {
			t.Errorf("%s: build settings %v", a[i].Platform, settings)
		}
		data, err := os.ReadFile(a[i].Path)
		if err != nil || !bytes.Contains(data, []byte("v9.9.9-test")) {
			t.Errorf("%s: version not stamped (%v)", a[i].Platform, err)
		}
	}
	if a[0].SHA256 == a[1].SHA256 {
		t.Error("amd64 and arm64 binaries are identical")
	}
}

func TestBuildErrors(t *testing.T) {
	if _, err := Build(context.Background(), Options{}); err == nil {
		t.Error("empty options accepted")
	}
	ps, _ := platform.ParseList("linux/amd64")
	_, err := Build(context.Background(), Options{
		ModuleDir: t.TempDir(), Programs: []Program{{Name: "x", ImportPath: "./nope"}}, Platforms: ps, OutDir: t.TempDir(),
		Go: "go", // go test puts its own toolchain first on PATH
	})
	if err == nil || !strings.Contains(err.Error(), "go build for linux/amd64") {
		t.Errorf("bad package: %v", err)
	}
}

// TestVariantLinking compiles the executor the way fsbuild does for each
// variant of runtime/variant's table: a Static variant's binary must have no
// ELF interpreter (PT_INTERP), or it could not start on scratch; the CUDA
// variant's carries the CUDA backend, which loads the driver at run time
// (purego), so it is dynamically linked.
func TestVariantLinking(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the executor")
	}
	modDir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatal(err)
	}
	ps, _ := platform.ParseList("linux/amd64")
	for _, v := range variant.All {
		bins, err := Build(context.Background(), Options{
			ModuleDir: strings.TrimSpace(string(modDir)),
			Programs:  []Program{{Name: "executor", ImportPath: "./runtime/cmd/executor"}},
			Platforms: ps, Version: "v0.0.0-test", OutDir: t.TempDir(), Go: "go", Tags: v.BuildTags,
		})
		if err != nil {
			t.Fatal(err)
		}
		interp := interpreter(t, bins[0].Path)
		if v.Static && interp != "" {
			t.Errorf("variant %s: the executor asks for the interpreter %s; a static variant must run on scratch", v.Name, interp)
		}
		if !v.Static && interp == "" {
			t.Errorf("variant %s: the executor is static; it should carry the backend that loads system libraries", v.Name)
		}
	}
}

// interpreter is the ELF's PT_INTERP path, "" for a static binary.
func interpreter(t *testing.T, path string) string {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				t.Fatal(err)
			}
			return strings.TrimRight(string(b), "\x00")
		}
	}
	return ""
}
