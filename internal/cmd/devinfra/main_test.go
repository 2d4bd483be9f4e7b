package main

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	t.Setenv("FEDSCALE_KUBE_STATE", "/tmp/k")
	t.Setenv("FEDSCALE_BUILDKIT_STATE", "/tmp/b")
	for _, tc := range []struct {
		args []string
		out  string
		err  error
		msg  string
	}{
		{args: []string{"kube", "kubeconfig"}, out: "/tmp/k/kubeconfig\n"},
		{args: []string{"buildkitd", "addr"}, out: "unix:///tmp/b/buildkitd.sock\n"},
		{args: nil, err: errUsage},
		{args: []string{"tools"}, err: errUsage},
		{args: []string{"kube"}, err: errUsage},
		{args: []string{"kube", "start", "extra"}, err: errUsage},
		{args: []string{"dockerd", "addr"}, err: errUsage},
		{args: []string{"tools", "nosuchtool"}, msg: `unknown tool "nosuchtool"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out strings.Builder
			err := run(context.Background(), "../../..", tc.args, &out)
			switch {
			case tc.err != nil && !errors.Is(err, tc.err), tc.msg != "" && (err == nil || !strings.Contains(err.Error(), tc.msg)):
				t.Fatalf("err = %v, want %v %s", err, tc.err, tc.msg)
			case tc.err == nil && tc.msg == "" && err != nil:
				t.Fatal(err)
			}
			if out.String() != tc.out {
				t.Errorf("stdout %q, want %q", out.String(), tc.out)
			}
		})
	}
}
