package platform

import (
	"strings"
	"testing"
)

func TestParseList(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    string
		wantErr string
	}{
		{in: "", want: Host().String()},
		{in: "linux/amd64", want: "linux/amd64"},
		{in: "linux/arm64,linux/amd64", want: "linux/amd64,linux/arm64"},
		{in: "linux/amd64, linux/amd64", want: "linux/amd64"},
		{in: "linux/arm64/v8", want: "linux/arm64"},
		{in: "linux/arm", want: "linux/arm/v7"},
		{in: "windows/amd64", wantErr: `platform "windows/amd64" is not supported`},
		{in: "linux/mips", wantErr: "not supported (supported: linux/amd64, linux/arm64"},
		{in: "amd64", wantErr: "want os/arch"},
	} {
		got, err := ParseList(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseList(%q) error = %v, want it to contain %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseList(%q): %v", tc.in, err)
			continue
		}
		if Join(got) != tc.want {
			t.Errorf("ParseList(%q) = %s, want %s", tc.in, Join(got), tc.want)
		}
	}
}

func TestGoEnvAndDir(t *testing.T) {
	p, err := Parse("linux/arm/v7")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.GoEnv(), " "); got != "GOOS=linux GOARCH=arm GOARM=7" {
		t.Errorf("GoEnv = %s", got)
	}
	if p.Dir() != "linux_armv7" {
		t.Errorf("Dir = %s", p.Dir())
	}
}

func TestParseEdges(t *testing.T) {
	for _, tc := range []struct{ in, want, wantErr string }{
		{in: " linux/amd64 ", want: "linux/amd64"},
		{in: "linux/arm/v7", want: "linux/arm/v7"},
		{in: "linux/amd64:10.0", wantErr: "want os/arch"},
		{in: "linux/arm/v7/x", wantErr: "want os/arch"},
		{in: "/amd64", wantErr: "want os/arch"},
		{in: "linux/", wantErr: "want os/arch"},
	} {
		p, err := Parse(tc.in)
		switch {
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("Parse(%q) = %v, %v; want an error containing %q", tc.in, p, err, tc.wantErr)
		case tc.wantErr == "" && (err != nil || p.String() != tc.want):
			t.Errorf("Parse(%q) = %v, %v; want %s", tc.in, p, err, tc.want)
		}
	}
	if got := FromOCI(Host().OCI()); got != Host() {
		t.Errorf("FromOCI(OCI()) = %v, want %v", got, Host())
	}
	if FromOCI(nil) != (Platform{}) {
		t.Error("FromOCI(nil) is not the zero platform")
	}
}
