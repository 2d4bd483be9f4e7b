package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/fedscale/fedscale-go/runtime/config"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestConfigure(t *testing.T) {
	for _, tc := range []struct {
		env                  func(string) string
		rounds, port, testBs int
		bar                  float64
		err                  string
	}{
		{env(), 80, 29500, 100, 0.90, ""},
		{env("DATASET", "fashion"), 80, 29500, 100, 0.75, ""},
		{env("MODEL", "resnet18", "ROUNDS", "3", "PORT", "30000"), 3, 30000, 50, 0.5, ""},
		{env("DATASET", "cifar"), 0, 0, 0, 0, `DATASET must be mnist or fashion, got "cifar"`},
		{env("PORT", "65534"), 0, 0, 0, 0, `PORT="65534": want a number in 1..65532`},
		{env("ROUNDS", "ten"), 0, 0, 0, 0, `ROUNDS="ten"`},
		{env("ROUNDS", "0"), 0, 0, 0, 0, `ROUNDS="0"`},
	} {
		d, err := configure(tc.env)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("configure: %v, want %q", err, tc.err)
			}
			continue
		}
		if err != nil || d.rounds != tc.rounds || d.port != tc.port || d.testBsz != tc.testBs || d.bar != tc.bar {
			t.Errorf("configure = %+v, %v; want rounds %d port %d test_bsz %d bar %g", d, err, tc.rounds, tc.port, tc.testBs, tc.bar)
		}
	}
}

// TestJobFile: the runtime's own parser reads the demo's job file as meant.
func TestJobFile(t *testing.T) {
	for _, model := range []string{"mlp", "resnet18"} {
		d, err := configure(env("MODEL", model, "DATASET", "fashion", "WORK", "/w"))
		if err != nil {
			t.Fatal(err)
		}
		job, err := config.Parse(d.jobFile("/w/data-fashion"), "demo.yml")
		if err != nil {
			t.Fatalf("%s: %v", model, err)
		}
		c := job.Conf
		wantSet, wantGrey := "fashion", true
		if model != "mlp" {
			wantSet, wantGrey = "femnist", false
		}
		if c.JobName != "demo_fashion" || c.PsPort != 29500 || c.Model != model || c.Rounds != d.rounds || c.TestBsz != d.testBsz ||
			c.DataSet != wantSet || c.GreyInput != wantGrey || c.LogPath != "/w" || c.DataDir != "/w/data-fashion" {
			t.Errorf("%s: parsed %+v", model, c)
		}
	}
}

func TestFinalTop1(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		err  string
	}{
		{`{"round":79,"loss":0.3}` + "\n" + `{"round":80,"top_1":0.9421,"top_5":0.99}` + "\n", 0.9421, ""},
		{`{"round":80,"top_1":0.5}`, 0.5, ""},
		{`{"round":80,"loss":0.3}` + "\n", 0, "round 80, the last, has no top_1"},
		{"", 0, "last line"},
		{`{"round":80,"top_1":`, 0, "last line"},
	} {
		got, err := finalTop1([]byte(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("finalTop1(%q) error %v, want %q", tc.in, err, tc.err)
			}
		} else if err != nil || got != tc.want {
			t.Errorf("finalTop1(%q) = %g, %v; want %g", tc.in, got, err, tc.want)
		}
	}
}

func TestLineFilter(t *testing.T) {
	var out bytes.Buffer
	l := &lineFilter{out: &out, keep: []string{"FL Testing", "ERROR"}}
	for _, chunk := range []string{"(11-25) INFO FL Test", "ing in round: 10\nnoise\n", "ERROR x\npartial ERROR"} {
		if n, err := l.Write([]byte(chunk)); err != nil || n != len(chunk) {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if want := "(11-25) INFO FL Testing in round: 10\nERROR x\n"; out.String() != want {
		t.Errorf("filtered %q, want %q", out.String(), want)
	}
}
