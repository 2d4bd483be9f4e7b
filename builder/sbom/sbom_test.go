package sbom

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// Parsed view of the document, for assertions.
type testDoc struct {
	SPDXVersion       string `json:"spdxVersion"`
	DataLicense       string `json:"dataLicense"`
	SPDXID            string `json:"SPDXID"`
	Name              string `json:"name"`
	DocumentNamespace string `json:"documentNamespace"`
	CreationInfo      struct {
		Created  string   `json:"created"`
		Creators []string `json:"creators"`
	} `json:"creationInfo"`
	Packages []struct {
		SPDXID           string `json:"SPDXID"`
		Name             string `json:"name"`
		VersionInfo      string `json:"versionInfo"`
		PackageFileName  string `json:"packageFileName"`
		DownloadLocation string `json:"downloadLocation"`
		FilesAnalyzed    *bool  `json:"filesAnalyzed"`
		Checksums        []struct {
			Algorithm     string `json:"algorithm"`
			ChecksumValue string `json:"checksumValue"`
		} `json:"checksums"`
		LicenseConcluded string `json:"licenseConcluded"`
		LicenseDeclared  string `json:"licenseDeclared"`
		CopyrightText    string `json:"copyrightText"`
		Comment          string `json:"comment"`
		ExternalRefs     []struct {
			ReferenceCategory string `json:"referenceCategory"`
			ReferenceType     string `json:"referenceType"`
			ReferenceLocator  string `json:"referenceLocator"`
		} `json:"externalRefs"`
		PrimaryPackagePurpose string `json:"primaryPackagePurpose"`
	} `json:"packages"`
	Relationships []struct {
		SPDXElementID      string `json:"spdxElementId"`
		RelationshipType   string `json:"relationshipType"`
		RelatedSPDXElement string `json:"relatedSpdxElement"`
	} `json:"relationships"`
}

func (d *testDoc) pkgByID(t *testing.T, id string) int {
	t.Helper()
	for i, p := range d.Packages {
		if p.SPDXID == id {
			return i
		}
	}
	t.Fatalf("no package %s", id)
	return -1
}

// summary renders packages as "name version purl" and relationships as
// "from TYPE to", in document order.
func (d *testDoc) summary() (pkgs, rels []string) {
	for _, p := range d.Packages {
		purl := ""
		for _, r := range p.ExternalRefs {
			if r.ReferenceType == "purl" {
				purl = r.ReferenceLocator
			}
		}
		pkgs = append(pkgs, strings.TrimSpace(p.SPDXID+" "+p.Name+" "+p.VersionInfo+" "+purl))
	}
	for _, r := range d.Relationships {
		rels = append(rels, r.SPDXElementID+" "+r.RelationshipType+" "+r.RelatedSPDXElement)
	}
	return pkgs, rels
}

var (
	sumA = strings.Repeat("a", 64)
	sumB = strings.Repeat("b", 64)
)

func baseOpts(bins ...Binary) Options {
	return Options{
		Name:      "fedscale-exec linux/amd64",
		Namespace: "https://github.com/fedscale/fedscale-go/spdx/fedscale-exec/sha256:abcd",
		Created:   time.Date(2025, 11, 25, 22, 17, 3, 999, time.FixedZone("CET", 3600)),
		Creator:   "fsbuild-v1.2.3",
		Binaries:  bins,
	}
}

func executorInfo() *debug.BuildInfo {
	return &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Path:      "github.com/fedscale/fedscale-go/launcher/cmd/executor",
		Main:      debug.Module{Path: "github.com/fedscale/fedscale-go", Version: "v1.2.3"},
		Deps: []*debug.Module{
			{Path: "google.golang.org/grpc", Version: "v1.85.0", Sum: "h1:grpc="},
			{Path: "github.com/spf13/cobra", Version: "v1.10.2", Sum: "h1:cobra="},
			{Path: "gopkg.in/yaml.v3", Version: "v3.0.1", Sum: "h1:yaml="},
		},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123abcd"},
			{Key: "GOOS", Value: "linux"},
			{Key: "-trimpath", Value: "true"},
			{Key: "CGO_ENABLED", Value: "0"},
			{Key: "GOARCH", Value: "amd64"},
			{Key: "-ldflags", Value: "-s -w"},
		},
	}
}

func mustSPDX(t *testing.T, opts Options) ([]byte, *testDoc) {
	t.Helper()
	out, err := SPDX(opts)
	if err != nil {
		t.Fatalf("SPDX: %v", err)
	}
	var d testDoc
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("output does not parse: %v\n%s", err, out)
	}
	return out, &d
}

func TestSingleBinaryDocument(t *testing.T) {
	out, d := mustSPDX(t, baseOpts(Binary{Path: "/usr/local/bin/executor", Info: executorInfo(), SHA256: strings.ToUpper(sumA)}))

	if !bytes.HasSuffix(out, []byte("}\n")) || !bytes.HasPrefix(out, []byte("{\n  \"spdxVersion\": \"SPDX-2.3\",\n")) {
		t.Errorf("unexpected framing/indentation:\n%s", out)
	}
	for _, c := range []struct{ name, got, want string }{
		{"spdxVersion", d.SPDXVersion, "SPDX-2.3"},
		{"dataLicense", d.DataLicense, "CC0-1.0"},
		{"SPDXID", d.SPDXID, "SPDXRef-DOCUMENT"},
		{"name", d.Name, "fedscale-exec linux/amd64"},
		{"documentNamespace", d.DocumentNamespace, "https://github.com/fedscale/fedscale-go/spdx/fedscale-exec/sha256:abcd"},
		{"created", d.CreationInfo.Created, "2025-11-25T21:17:03Z"},
		{"creators", strings.Join(d.CreationInfo.Creators, "|"), "Tool: fsbuild-v1.2.3"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}

	pkgs, rels := d.summary()
	wantPkgs := []string{
		"SPDXRef-Binary-usr-local-bin-executor github.com/fedscale/fedscale-go/launcher/cmd/executor v1.2.3 pkg:golang/github.com/fedscale/fedscale-go@v1.2.3",
		"SPDXRef-GoStdlib-go1.26.8 stdlib go1.26.8 pkg:golang/stdlib@go1.26.8",
		"SPDXRef-GoModule-github.com-spf13-cobra-v1.10.2 github.com/spf13/cobra v1.10.2 pkg:golang/github.com/spf13/cobra@v1.10.2",
		"SPDXRef-GoModule-google.golang.org-grpc-v1.85.0 google.golang.org/grpc v1.85.0 pkg:golang/google.golang.org/grpc@v1.85.0",
		"SPDXRef-GoModule-gopkg.in-yaml.v3-v3.0.1 gopkg.in/yaml.v3 v3.0.1 pkg:golang/gopkg.in/yaml.v3@v3.0.1",
	}
	wantRels := []string{
		"SPDXRef-DOCUMENT DESCRIBES SPDXRef-Binary-usr-local-bin-executor",
		"SPDXRef-Binary-usr-local-bin-executor DEPENDS_ON SPDXRef-GoStdlib-go1.26.8",
		"SPDXRef-Binary-usr-local-bin-executor DEPENDS_ON SPDXRef-GoModule-github.com-spf13-cobra-v1.10.2",
		"SPDXRef-Binary-usr-local-bin-executor DEPENDS_ON SPDXRef-GoModule-google.golang.org-grpc-v1.85.0",
		"SPDXRef-Binary-usr-local-bin-executor DEPENDS_ON SPDXRef-GoModule-gopkg.in-yaml.v3-v3.0.1",
	}
	assertLines(t, "packages", pkgs, wantPkgs)
	assertLines(t, "relationships", rels, wantRels)

	bin := d.Packages[0]
	if bin.PrimaryPackagePurpose != "APPLICATION" || bin.PackageFileName != "/usr/local/bin/executor" {
		t.Errorf("binary purpose/file = %q/%q", bin.PrimaryPackagePurpose, bin.PackageFileName)
	}
	if len(bin.Checksums) != 1 || bin.Checksums[0].Algorithm != "SHA256" || bin.Checksums[0].ChecksumValue != sumA {
		t.Errorf("binary checksums = %+v (want lower-cased SHA256)", bin.Checksums)
	}
	wantComment := "Go build settings:\n-ldflags=-s -w\n-trimpath=true\nCGO_ENABLED=0\nGOARCH=amd64\nGOOS=linux\nvcs.revision=0123abcd"
	if bin.Comment != wantComment {
		t.Errorf("binary comment = %q, want %q", bin.Comment, wantComment)
	}
	for _, p := range d.Packages {
		if p.DownloadLocation != "NOASSERTION" || p.LicenseConcluded != "NOASSERTION" ||
			p.LicenseDeclared != "NOASSERTION" || p.CopyrightText != "NOASSERTION" {
			t.Errorf("%s: license/download/copyright not NOASSERTION", p.SPDXID)
		}
		if p.FilesAnalyzed == nil || *p.FilesAnalyzed {
			t.Errorf("%s: filesAnalyzed must be present and false", p.SPDXID)
		}
		if len(p.ExternalRefs) != 1 || p.ExternalRefs[0].ReferenceCategory != "PACKAGE-MANAGER" {
			t.Errorf("%s: externalRefs = %+v", p.SPDXID, p.ExternalRefs)
		}
	}
	for _, p := range d.Packages[1:] {
		if len(p.Checksums) != 0 || p.PrimaryPackagePurpose != "LIBRARY" {
			t.Errorf("%s: checksums %+v purpose %q", p.SPDXID, p.Checksums, p.PrimaryPackagePurpose)
		}
	}
	if c := d.Packages[d.pkgByID(t, "SPDXRef-GoModule-github.com-spf13-cobra-v1.10.2")].Comment; c != "go.sum h1:cobra=" {
		t.Errorf("cobra comment = %q", c)
	}
}

func assertLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\ngot:\n  %s\nwant:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestDeterminism(t *testing.T) {
	mk := func(reverse bool) Options {
		info := executorInfo()
		if reverse {
			for i, j := 0, len(info.Deps)-1; i < j; i, j = i+1, j-1 {
				info.Deps[i], info.Deps[j] = info.Deps[j], info.Deps[i]
			}
			for i, j := 0, len(info.Settings)-1; i < j; i, j = i+1, j-1 {
				info.Settings[i], info.Settings[j] = info.Settings[j], info.Settings[i]
			}
		}
		other := executorInfo()
		other.Path = "github.com/fedscale/fedscale-go/launcher/cmd/aggregator"
		other.GoVersion = "go1.25.3"
		return baseOpts(
			Binary{Path: "/usr/local/bin/executor", Info: info, SHA256: sumA},
			Binary{Path: "/usr/local/bin/aggregator", Info: other, SHA256: sumB},
		)
	}
	first, err := SPDX(mk(false))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		reverse bool
	}{{"same input", false}, {"reversed deps and settings", true}} {
		t.Run(tc.name, func(t *testing.T) {
			for i := 0; i < 5; i++ {
				got, err := SPDX(mk(tc.reverse))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, first) {
					t.Fatalf("output differs:\n%s\nvs\n%s", got, first)
				}
			}
		})
	}
	// The caller's slices are not reordered.
	opts := mk(true)
	if _, err := SPDX(opts); err != nil {
		t.Fatal(err)
	}
	if opts.Binaries[0].Info.Deps[0].Path != "gopkg.in/yaml.v3" || opts.Binaries[0].Info.Settings[0].Key != "-ldflags" {
		t.Error("SPDX modified its input")
	}
}

func TestDedupAcrossBinaries(t *testing.T) {
	exec := executorInfo()
	agg := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Path:      "github.com/fedscale/fedscale-go/launcher/cmd/aggregator",
		Main:      debug.Module{Path: "github.com/fedscale/fedscale-go", Version: "(devel)"},
		Deps: []*debug.Module{
			{Path: "google.golang.org/grpc", Version: "v1.85.0", Sum: "h1:grpc="},
			{Path: "google.golang.org/grpc", Version: "v1.85.0", Sum: "h1:grpc="}, // duplicate entry
			{Path: "github.com/spf13/cobra", Version: "v1.9.0", Sum: "h1:cobra9="},
		},
	}
	tool := &debug.BuildInfo{
		GoVersion: "go1.25.3",
		Path:      "github.com/fedscale/fedscale-go/tools/probe",
		Main:      debug.Module{Path: "github.com/fedscale/fedscale-go", Version: "v1.2.3"},
		Deps:      []*debug.Module{{Path: "gopkg.in/yaml.v3", Version: "v3.0.1", Sum: "h1:yaml="}},
	}
	_, d := mustSPDX(t, baseOpts(
		Binary{Path: "/usr/local/bin/executor", Info: exec, SHA256: sumA},
		Binary{Path: "/usr/local/bin/aggregator", Info: agg, SHA256: sumB},
		Binary{Path: "/opt/probe", Info: tool, SHA256: sumA},
	))
	pkgs, rels := d.summary()
	assertLines(t, "packages", pkgs, []string{
		"SPDXRef-Binary-usr-local-bin-executor github.com/fedscale/fedscale-go/launcher/cmd/executor v1.2.3 pkg:golang/github.com/fedscale/fedscale-go@v1.2.3",
		"SPDXRef-Binary-usr-local-bin-aggregator github.com/fedscale/fedscale-go/launcher/cmd/aggregator (devel) pkg:golang/github.com/fedscale/fedscale-go",
		"SPDXRef-Binary-opt-probe github.com/fedscale/fedscale-go/tools/probe v1.2.3 pkg:golang/github.com/fedscale/fedscale-go@v1.2.3",
		"SPDXRef-GoStdlib-go1.25.3 stdlib go1.25.3 pkg:golang/stdlib@go1.25.3",
		"SPDXRef-GoStdlib-go1.26.8 stdlib go1.26.8 pkg:golang/stdlib@go1.26.8",
		"SPDXRef-GoModule-github.com-spf13-cobra-v1.10.2 github.com/spf13/cobra v1.10.2 pkg:golang/github.com/spf13/cobra@v1.10.2",
		"SPDXRef-GoModule-github.com-spf13-cobra-v1.9.0 github.com/spf13/cobra v1.9.0 pkg:golang/github.com/spf13/cobra@v1.9.0",
		"SPDXRef-GoModule-google.golang.org-grpc-v1.85.0 google.golang.org/grpc v1.85.0 pkg:golang/google.golang.org/grpc@v1.85.0",
		"SPDXRef-GoModule-gopkg.in-yaml.v3-v3.0.1 gopkg.in/yaml.v3 v3.0.1 pkg:golang/gopkg.in/yaml.v3@v3.0.1",
	})
	assertLines(t, "relationships", rels, []string{
		"SPDXRef-DOCUMENT DESCRIBES SPDXRef-Binary-usr-local-bin-executor",
		"SPDXRef-DOCUMENT DESCRIBES SPDXRef-Binary-usr-local-bin-aggregator",
		"SPDXRef-DOCUMENT DESCRIBES SPDXRef-Binary-opt-probe",
		"SPDXRef-Binary-usr-local-bin-executor DEPENDS_ON SPDXRef-GoStdlib-go1.26.8",
		"SPDXRef-Binary-usr-local-bin-executor DEPENDS_ON SPDXRef-GoModule-github.com-spf13-cobra-v1.10.2",
		"SPDXRef-Binary-usr-local-bin-executor DEPENDS_ON SPDXRef-GoModule-google.golang.org-grpc-v1.85.0",
		"SPDXRef-Binary-usr-local-bin-executor DEPENDS_ON SPDXRef-GoModule-gopkg.in-yaml.v3-v3.0.1",
		"SPDXRef-Binary-usr-local-bin-aggregator DEPENDS_ON SPDXRef-GoStdlib-go1.26.8",
		"SPDXRef-Binary-usr-local-bin-aggregator DEPENDS_ON SPDXRef-GoModule-github.com-spf13-cobra-v1.9.0",
		"SPDXRef-Binary-usr-local-bin-aggregator DEPENDS_ON SPDXRef-GoModule-google.golang.org-grpc-v1.85.0",
		"SPDXRef-Binary-opt-probe DEPENDS_ON SPDXRef-GoStdlib-go1.25.3",
		"SPDXRef-Binary-opt-probe DEPENDS_ON SPDXRef-GoModule-gopkg.in-yaml.v3-v3.0.1",
	})
	ids := map[string]bool{}
	for _, p := range d.Packages {
		if ids[p.SPDXID] {
			t.Errorf("duplicate SPDXID %s", p.SPDXID)
		}
		ids[p.SPDXID] = true
	}
}

func TestReplace(t *testing.T) {
	info := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Path:      "example.com/app",
		Main:      debug.Module{Path: "example.com/app", Version: "v0.1.0"},
		Deps: []*debug.Module{
			{Path: "example.com/orig", Version: "v1.0.0", Replace: &debug.Module{Path: "example.com/fork", Version: "v1.0.1-fix", Sum: "h1:fork="}},
			{Path: "example.com/local", Version: "v0.3.0", Replace: &debug.Module{Path: "../local"}},
		},
	}
	// A second binary requires the fork directly, and a different original is
	// replaced by the same fork: one package, both originals noted.
	info2 := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Path:      "example.com/app/cmd/two",
		Main:      debug.Module{Path: "example.com/app", Version: "v0.1.0"},
		Deps: []*debug.Module{
			{Path: "example.com/fork", Version: "v1.0.1-fix", Sum: "h1:fork="},
			{Path: "example.com/orig", Version: "v0.9.0", Replace: &debug.Module{Path: "example.com/fork", Version: "v1.0.1-fix", Sum: "h1:fork="}},
		},
	}
	_, d := mustSPDX(t, baseOpts(
		Binary{Path: "/app", Info: info, SHA256: sumA},
		Binary{Path: "/two", Info: info2, SHA256: sumB},
	))
	pkgs, rels := d.summary()
	assertLines(t, "packages", pkgs, []string{
		"SPDXRef-Binary-app example.com/app v0.1.0 pkg:golang/example.com/app@v0.1.0",
		"SPDXRef-Binary-two example.com/app/cmd/two v0.1.0 pkg:golang/example.com/app@v0.1.0",
		"SPDXRef-GoStdlib-go1.26.8 stdlib go1.26.8 pkg:golang/stdlib@go1.26.8",
		"SPDXRef-GoModule-example.com-fork-v1.0.1-fix example.com/fork v1.0.1-fix pkg:golang/example.com/fork@v1.0.1-fix",
		"SPDXRef-GoModule-example.com-local-local-..-local example.com/local (devel) pkg:golang/example.com/local",
	})
	assertLines(t, "relationships", rels, []string{
		"SPDXRef-DOCUMENT DESCRIBES SPDXRef-Binary-app",
		"SPDXRef-DOCUMENT DESCRIBES SPDXRef-Binary-two",
		"SPDXRef-Binary-app DEPENDS_ON SPDXRef-GoStdlib-go1.26.8",
		"SPDXRef-Binary-app DEPENDS_ON SPDXRef-GoModule-example.com-fork-v1.0.1-fix",
		"SPDXRef-Binary-app DEPENDS_ON SPDXRef-GoModule-example.com-local-local-..-local",
		"SPDXRef-Binary-two DEPENDS_ON SPDXRef-GoStdlib-go1.26.8",
		"SPDXRef-Binary-two DEPENDS_ON SPDXRef-GoModule-example.com-fork-v1.0.1-fix",
	})
	for _, tc := range []struct{ id, comment string }{
		{"SPDXRef-GoModule-example.com-fork-v1.0.1-fix", "replaces example.com/orig@v0.9.0, example.com/orig@v1.0.0\ngo.sum h1:fork="},
		{"SPDXRef-GoModule-example.com-local-local-..-local", "replaced by local directory ../local\nreplaces example.com/local@v0.3.0"},
	} {
		if got := d.Packages[d.pkgByID(t, tc.id)].Comment; got != tc.comment {
			t.Errorf("%s comment = %q, want %q", tc.id, got, tc.comment)
		}
	}
}

func TestConflictingSums(t *testing.T) {
	a := executorInfo()
	b := executorInfo()
	b.Path = "github.com/fedscale/fedscale-go/launcher/cmd/other"
	b.Deps[0] = &debug.Module{Path: "google.golang.org/grpc", Version: "v1.85.0", Sum: "h1:tampered="}
	_, err := SPDX(baseOpts(Binary{Path: "/a", Info: a, SHA256: sumA}, Binary{Path: "/b", Info: b, SHA256: sumA}))
	if err == nil || !strings.Contains(err.Error(), "google.golang.org/grpc@v1.85.0") {
		t.Fatalf("err = %v, want go.sum conflict", err)
	}
}

func TestIDCollisions(t *testing.T) {
	info := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Path:      "example.com/app",
		Main:      debug.Module{Path: "example.com/app", Version: "v1.0.0"},
		Deps: []*debug.Module{
			{Path: "example.com/a_b", Version: "v1.0.0"},
			{Path: "example.com/a-b", Version: "v1.0.0"},
		},
	}
	_, d := mustSPDX(t, baseOpts(
		Binary{Path: "/bin/a_b", Info: info, SHA256: sumA},
		Binary{Path: "/bin/a-b", Info: info, SHA256: sumA},
	))
	var ids []string
	for _, p := range d.Packages {
		ids = append(ids, p.SPDXID)
	}
	assertLines(t, "ids", ids, []string{
		"SPDXRef-Binary-bin-a-b",
		"SPDXRef-Binary-bin-a-b-2",
		"SPDXRef-GoStdlib-go1.26.8",
		"SPDXRef-GoModule-example.com-a-b-v1.0.0",
		"SPDXRef-GoModule-example.com-a-b-v1.0.0-2",
	})
	if d.Packages[3].Name != "example.com/a-b" || d.Packages[4].Name != "example.com/a_b" {
		t.Errorf("module order: %s, %s", d.Packages[3].Name, d.Packages[4].Name)
	}
}

func TestPurl(t *testing.T) {
	for _, tc := range []struct{ path, version, want string }{
		{"github.com/spf13/cobra", "v1.10.2", "pkg:golang/github.com/spf13/cobra@v1.10.2"},
		{"github.com/Azure/go-autorest", "v14.2.0+incompatible", "pkg:golang/github.com/Azure/go-autorest@v14.2.0%2Bincompatible"},
		{"example.com/a~b/c_d", "v0.0.0-20191010083416-a7dc8b61c822", "pkg:golang/example.com/a~b/c_d@v0.0.0-20191010083416-a7dc8b61c822"},
		{"example.com/sp ace/@at", "", "pkg:golang/example.com/sp%20ace/%40at"},
		{"example.com/x", "(devel)", "pkg:golang/example.com/x"},
		{"stdlib", "go1.27rc1 X:nodwarf5", "pkg:golang/stdlib@go1.27rc1%20X%3Anodwarf5"},
		{"example.com/ünï", "v1.0.0", "pkg:golang/example.com/%C3%BCn%C3%AF@v1.0.0"},
	} {
		if got := purl(tc.path, tc.version); got != tc.want {
			t.Errorf("purl(%q, %q) = %q, want %q", tc.path, tc.version, got, tc.want)
		}
	}
}

func TestValidation(t *testing.T) {
	good := func() Binary { return Binary{Path: "/usr/local/bin/executor", Info: executorInfo(), SHA256: sumA} }
	for _, tc := range []struct {
		name   string
		mutate func(*Options)
		want   string
	}{
		{"empty name", func(o *Options) { o.Name = "" }, "document name is empty"},
		{"empty namespace", func(o *Options) { o.Namespace = "" }, "document namespace is empty"},
		{"relative namespace", func(o *Options) { o.Namespace = "fedscale-exec" }, "must be an absolute URI"},
		{"namespace with fragment", func(o *Options) { o.Namespace = "https://example.com/x#y" }, "must be an absolute URI"},
		{"zero created", func(o *Options) { o.Created = time.Time{} }, "creation time is zero"},
		{"empty creator", func(o *Options) { o.Creator = "" }, "creator is empty"},
		{"no binaries", func(o *Options) { o.Binaries = nil }, "no binaries"},
		{"nil info", func(o *Options) { o.Binaries[0].Info = nil }, "binary 0 (/usr/local/bin/executor): build info is nil"},
		{"empty path", func(o *Options) { o.Binaries[0].Path = "" }, "binary 0: path is empty"},
		{"relative path", func(o *Options) { o.Binaries[0].Path = "bin/x" }, "path is not absolute"},
		{"duplicate path", func(o *Options) { o.Binaries = append(o.Binaries, good()) }, "binary 1 (/usr/local/bin/executor): same path as binary 0"},
		{"empty sha", func(o *Options) { o.Binaries[0].SHA256 = "" }, `SHA256 "" is not 64 hex characters`},
		{"short sha", func(o *Options) { o.Binaries[0].SHA256 = sumA[:63] }, "is not 64 hex characters"},
		{"non-hex sha", func(o *Options) { o.Binaries[0].SHA256 = strings.Repeat("g", 64) }, "is not 64 hex characters"},
		{"sha with prefix", func(o *Options) { o.Binaries[0].SHA256 = "sha256:" + sumA[:57] }, "is not 64 hex characters"},
		{"no go version", func(o *Options) { o.Binaries[0].Info.GoVersion = "" }, "build info has no Go version"},
		{"no main path", func(o *Options) { o.Binaries[0].Info.Path, o.Binaries[0].Info.Main.Path = "", "" }, "neither a main package nor a main module path"},
		{"nil dep", func(o *Options) { o.Binaries[0].Info.Deps[1] = nil }, "dependency 1 is nil"},
		{"empty dep path", func(o *Options) { o.Binaries[0].Info.Deps[1].Path = "" }, "dependency 1 has an empty module path"},
		{"empty replace path", func(o *Options) { o.Binaries[0].Info.Deps[1].Replace = &debug.Module{Version: "v1.0.0"} }, "replacement with an empty path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := baseOpts(good())
			tc.mutate(&opts)
			out, err := SPDX(opts)
			if err == nil {
				t.Fatalf("no error; output:\n%s", out)
			}
			if out != nil {
				t.Errorf("output returned alongside error")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "sbom: ") {
				t.Errorf("err = %q, want it to contain %q", err, tc.want)
			}
		})
	}

	t.Run("all errors reported", func(t *testing.T) {
		_, err := SPDX(Options{Binaries: []Binary{{}}})
		if err == nil {
			t.Fatal("no error")
		}
		for _, want := range []string{"name is empty", "namespace is empty", "creation time is zero", "creator is empty", "path is empty", "not 64 hex", "build info is nil"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("err %q lacks %q", err, want)
			}
		}
	})
}

// TestRealBuildInfo reads the build info of the running test binary with
// debug/buildinfo.ReadFile, the way fsbuild reads the binaries it compiled.
func TestRealBuildInfo(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Skipf("os.Executable: %v", err)
	}
	info, err := buildinfo.ReadFile(exe)
	if err != nil {
		t.Fatalf("buildinfo.ReadFile(%s): %v", exe, err)
	}
	f, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	sum := hex.EncodeToString(h.Sum(nil))

	self, ok := debug.ReadBuildInfo()
	if !ok {
		t.Fatal("debug.ReadBuildInfo: no build info")
	}
	for _, tc := range []struct {
		name string
		info *debug.BuildInfo
	}{{"buildinfo.ReadFile", info}, {"debug.ReadBuildInfo", self}} {
		t.Run(tc.name, func(t *testing.T) {
			opts := baseOpts(Binary{Path: "/usr/local/bin/sbom.test", Info: tc.info, SHA256: sum})
			out1, d := mustSPDX(t, opts)
			out2, err := SPDX(opts)
			if err != nil || !bytes.Equal(out1, out2) {
				t.Fatalf("second call differs (err %v)", err)
			}
			wantPkgs := 2 + len(tc.info.Deps) // binary, stdlib, one per (distinct) dep
			if len(d.Packages) != wantPkgs {
				t.Errorf("%d packages, want %d", len(d.Packages), wantPkgs)
			}
			if len(d.Relationships) != 2+len(tc.info.Deps) {
				t.Errorf("%d relationships, want %d", len(d.Relationships), 2+len(tc.info.Deps))
			}
			bin := d.Packages[0]
			if bin.Name != tc.info.Path || bin.Checksums[0].ChecksumValue != sum {
				t.Errorf("binary package = %q %+v", bin.Name, bin.Checksums)
			}
			stdlib := d.Packages[1]
			if stdlib.Name != "stdlib" || stdlib.VersionInfo != tc.info.GoVersion ||
				stdlib.ExternalRefs[0].ReferenceLocator != purl("stdlib", tc.info.GoVersion) {
				t.Errorf("stdlib package = %+v", stdlib)
			}
			for _, s := range tc.info.Settings {
				if !strings.Contains(bin.Comment, "\n"+s.Key+"=") {
					t.Errorf("comment lacks setting %s", s.Key)
				}
			}
		})
	}
}
