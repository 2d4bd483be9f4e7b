package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestCommit(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings []debug.BuildSetting
		want     string
	}{
		{"no VCS", nil, "unknown"},
		{"clean", []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "false"}}, "abc123"},
		{"modified", []debug.BuildSetting{{Key: "vcs.modified", Value: "true"}, {Key: "vcs.revision", Value: "abc123"}}, "abc123-dirty"},
		{"modified without revision", []debug.BuildSetting{{Key: "vcs.modified", Value: "true"}}, "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := commit(tc.settings); got != tc.want {
				t.Errorf("commit = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestGet(t *testing.T) {
	i := Get()
	if i.Version != Version || !strings.HasPrefix(i.GoVersion, "go") || !strings.Contains(i.Platform, "/") || i.Commit == "" {
		t.Errorf("Get() = %+v", i)
	}
}
