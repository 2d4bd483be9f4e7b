// Command goldendiff compares freshly generated golden fixtures with the
// committed ones (`make golden-check`): the same models, the same
// definitions and generated inputs, and results within float rounding
// (golden.DefaultDiffTol). It exits 1 on any difference and 2 on bad use.
//
//	goldendiff [-noise K] COMMITTED_DIR FRESH_DIR
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/fedscale/fedscale-go/internal/golden"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("goldendiff", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tol := golden.DefaultDiffTol
	fs.Float64Var(&tol.Values.Noise, "noise", tol.Values.Noise, "allowed multiple of PyTorch's float32-vs-float64 distance")
	fs.Float64Var(&tol.Values.Rel, "rel", tol.Values.Rel, "allowed relative difference of results")
	fs.Float64Var(&tol.Values.Abs, "abs", tol.Values.Abs, "allowed absolute difference of results")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: goldendiff [flags] COMMITTED_DIR FRESH_DIR")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return 2
	}
	want, err := golden.LoadDir(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "goldendiff:", err)
		return 1
	}
	got, err := golden.LoadDir(fs.Arg(1))
	if err != nil {
		fmt.Fprintln(stderr, "goldendiff:", err)
		return 1
	}
	fresh := map[string]*golden.Fixture{}
	for _, f := range got {
		fresh[f.Model] = f
	}
	failed := 0
	for _, w := range want {
		g, ok := fresh[w.Model]
		if !ok {
			fmt.Fprintf(stderr, "goldendiff: %s: committed, but not generated\n", w.Model)
			failed++
			continue
		}
		delete(fresh, w.Model)
		notes, err := golden.Diff(g, w, tol)
		for _, n := range notes {
			fmt.Fprintln(stderr, "goldendiff: note:", n)
		}
		if err != nil {
			fmt.Fprintln(stderr, "goldendiff:", err)
			failed++
			continue
		}
		fmt.Fprintf(stdout, "goldendiff: %s: ok\n", w.Model)
	}
	for name := range fresh {
		fmt.Fprintf(stderr, "goldendiff: %s: generated, but not committed (run `make golden`)\n", name)
		failed++
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "goldendiff: %d of %d fixtures drifted from the committed ones\n", failed, len(want))
		return 1
	}
	return 0
}
