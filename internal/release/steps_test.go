package release

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestBuildArgv(t *testing.T) {
	builds := Builds()
	if len(builds) != 2 || builds[0].CUDA || !builds[1].CUDA {
		t.Fatalf("Builds = %+v, want a CPU then a CUDA call", builds)
	}
	where := []string{"--repo", "r/fedscale"}
	for _, tc := range []struct {
		b    Build
		base string
		want string
	}{
		{builds[0], "", "all --push --platform linux/amd64,linux/arm64 --progress plain --repo r/fedscale --print-digest o/cpu.digests"},
		{builds[0], "b@sha256:1", "all --push --platform linux/amd64,linux/arm64 --progress plain --repo r/fedscale --print-digest o/cpu.digests"},
		{builds[1], "", "all --push --platform linux/amd64,linux/arm64 --progress plain --cuda " + CUDAVersion + " --repo r/fedscale --print-digest o/cuda.digests"},
		{builds[1], "b@sha256:1", "all --push --platform linux/amd64,linux/arm64 --progress plain --cuda " + CUDAVersion + " --base b@sha256:1 --repo r/fedscale --print-digest o/cuda.digests"},
	} {
		got := strings.Join(tc.b.Argv(tc.base, where, "o/"+tc.b.Set+".digests"), " ")
		if got != tc.want {
			t.Errorf("%s with base %q:\n got %s\nwant %s", tc.b.Set, tc.base, got, tc.want)
		}
	}
	// Argv must not write into the table's slices.
	if again := Builds(); !slices.Equal(again[1].Args, builds[1].Args) || len(builds[0].Args) != 6 {
		t.Errorf("Builds changed after Argv: %v", builds)
	}
}

func TestParsePushed(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		ref  string
		want Pushed
		err  bool
	}{
		{"docker.io/fedscale/fedscale-aggr:v1.2.0@" + d, Pushed{"docker.io/fedscale/fedscale-aggr", "v1.2.0", d}, false},
		{"127.0.0.1:5000/fedscale/fedscale-exec:v1-cuda12.4@" + d, Pushed{"127.0.0.1:5000/fedscale/fedscale-exec", "v1-cuda12.4", d}, false},
		{"127.0.0.1:5000/fedscale/fedscale-exec@" + d, Pushed{"127.0.0.1:5000/fedscale/fedscale-exec", "", d}, false},
		{"fedscale/fedscale-aggr:v1", Pushed{}, true},
		{"@" + d, Pushed{}, true},
		{"x:y@nodigest", Pushed{}, true},
	} {
		got, err := ParsePushed(tc.ref)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParsePushed(%q) = %+v, %v; want %+v, error %v", tc.ref, got, err, tc.want, tc.err)
		}
	}
	if got := (Pushed{"r:5000/n", "t", d}).ByDigest(); got != "r:5000/n@"+d {
		t.Errorf("ByDigest = %s", got)
	}
}

func TestReadPushed(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	d := "sha256:" + strings.Repeat("0", 64)
	got, err := ReadPushed(write("ok", "# comment\nr/a:v1@"+d+"\n\nr/b:v1@"+d+"\n"))
	if err != nil || len(got) != 2 || got[1].Name != "r/b" {
		t.Errorf("ReadPushed = %+v, %v", got, err)
	}
	for name, s := range map[string]string{"empty": "\n# nothing\n", "bad": "r/a:v1\n"} {
		if _, err := ReadPushed(write(name, s)); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, name)) {
			t.Errorf("%s: error %v, want one naming the file", name, err)
		}
	}
	if _, err := ReadPushed(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file: no error")
	}
}

func TestWriteSums(t *testing.T) {
	dir := t.TempDir()
	for name, s := range map[string]string{"a": "abc", "b": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	if err := WriteSums(&b, dir, []string{"b", "a"}); err != nil {
		t.Fatal(err)
	}
	// sha256sum's own output for these contents.
	want := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  b\n" +
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  a\n"
	if b.String() != want {
		t.Errorf("WriteSums:\n%s\nwant\n%s", b.String(), want)
	}
	if err := WriteSums(&b, dir, []string{"missing"}); err == nil {
		t.Error("a missing file: no error")
	}
}

func TestBinaryTargets(t *testing.T) {
	ts := BinaryTargets()
	if len(ts) != len(Binaries)*len(BinaryPlatforms) {
		t.Fatalf("%d targets", len(ts))
	}
	if ts[0].File != "fsbuild-linux-amd64" || ts[0].Package != "./builder/cmd/fsbuild" || ts[len(ts)-1].File != "launcher-darwin-arm64" {
		t.Errorf("targets %+v", ts)
	}
}

func TestWriteNotes(t *testing.T) {
	d1, d2 := "sha256:"+strings.Repeat("1", 64), "sha256:"+strings.Repeat("2", 64)
	var b bytes.Buffer
	err := WriteNotes(&b, []Pushed{{"docker.io/fedscale/fedscale-aggr", "v1.0.0", d1}, {"docker.io/fedscale/fedscale-exec", "v1.0.0-cuda12.4", d2}},
		NotesInfo{Server: "https://github.com", Repo: "fedscale/fedscale-go", Version: "v1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| `docker.io/fedscale/fedscale-aggr` | `v1.0.0` | `" + d1 + "` |",
		"| `docker.io/fedscale/fedscale-exec` | `v1.0.0-cuda12.4` | `" + d2 + "` |",
		"\ndocker.io/fedscale/fedscale-exec@" + d2 + "\n",
		"--certificate-identity 'https://github.com/fedscale/fedscale-go/.github/workflows/release.yml@refs/tags/v1.0.0'",
		"check out `v1.0.0`",
		"`fsbuild all --output oci=/tmp/verify --platform linux/amd64,linux/arm64`",
		"sha256sum -c SHA256SUMS",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("notes lack %q:\n%s", want, b.String())
		}
	}
}
