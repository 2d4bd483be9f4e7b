package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fedscale/fedscale-go/launcher/cmd/cli"
	"github.com/fedscale/fedscale-go/launcher/results"
)

// checkResults reads a finished job's results (rounds 0..rounds) in every
// format and plots them, then the errors: an unwritable --plot, and the
// job once its log folder (logDir) has gone, as before any round.
func checkResults(t *testing.T, bin, state, name, logDir string, rounds int) {
	t.Helper()
	out, err := launcher(t, bin, state, "results", name, "-o", "json")
	if err != nil {
		t.Fatalf("results -o json: %v\n%s", err, out)
	}
	var res results.Results
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("results -o json: %v\n%s", err, out)
	}
	if res.Source != results.SourceFiles || len(res.Records) != rounds+1 || res.Records[rounds].Round != rounds || res.Records[rounds].Top1 == nil {
		t.Errorf("results: %s", out)
	}
	out, err = launcher(t, bin, state, "results", name, "-o", "csv")
	rows, cerr := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || cerr != nil || len(rows) != rounds+2 || rows[0][0] != "round" {
		t.Errorf("results -o csv: %v %v\n%s", err, cerr, out)
	}
	out, err = launcher(t, bin, state, "results", name)
	if err != nil || !strings.HasPrefix(out, "ROUND  ") || strings.Count(out, "\n") != rounds+2 {
		t.Errorf("results table: %v\n%s", err, out)
	}

	plot := filepath.Join(t.TempDir(), "plot.png")
	if out, err := launcher(t, bin, state, "results", name, "--plot", plot); err != nil {
		t.Fatalf("results --plot: %v\n%s", err, out)
	}
	f, err := os.Open(plot)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil || img.Bounds().Dx() != 768 || img.Bounds().Dy() != 576 {
		t.Errorf("plot: %v %v", err, img.Bounds())
	}

	for _, tc := range []struct {
		name  string
		setup func()
		args  []string
		code  int
		want  string
	}{
		{"unwritable plot", func() {}, []string{"--plot", "/nonexistent/dir/plot.svg"}, cli.ExitFailure,
			"--plot /nonexistent/dir/plot.svg: open /nonexistent/dir/plot.svg: no such file or directory"},
		{"no rounds", func() {
			if err := os.Rename(logDir, logDir+".away"); err != nil {
				t.Fatal(err)
			}
		}, nil, cli.ExitFailure, `job "` + name + `": no round recorded yet (no record in a metrics.jsonl under ` + logDir + ")"},
	} {
		tc.setup()
		out, err := launcher(t, bin, state, append([]string{"results", name}, tc.args...)...)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("%s: %v, want exit %d\n%s\nwant %q", tc.name, err, tc.code, out, tc.want)
		}
	}
}
