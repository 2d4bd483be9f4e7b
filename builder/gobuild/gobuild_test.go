package gobuild

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/fedscale/fedscale-go/builder/platform"
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
