package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const fixtureDir = "../../../runtime/model/cpu/testdata/golden"

// dirWith copies the named committed fixtures into a new directory,
// applying edit to the text of each.
func dirWith(t *testing.T, edit func(string) string, models ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, m := range models {
		data, err := os.ReadFile(filepath.Join(fixtureDir, m+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, m+".json"), []byte(edit(string(data))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func same(s string) string { return s }

func TestRun(t *testing.T) {
	committed := dirWith(t, same, "logistic", "lr")
	for _, c := range []struct {
		name string
		args []string
		code int
		out  string // in stdout or stderr
	}{
		{"identical", []string{committed, dirWith(t, same, "logistic", "lr")}, 0, "lr: ok"},
		{"drift", []string{committed, dirWith(t, func(s string) string {
			return strings.Replace(s, `"losses":[2.4439118,`, `"losses":[2.4539118,`, 1)
		}, "logistic", "lr")}, 1, "loss 0"},
		{"missing", []string{committed, dirWith(t, same, "logistic")}, 1, "lr: committed, but not generated"},
		{"extra", []string{committed, dirWith(t, same, "logistic", "lr", "svm")}, 1, "svm: generated, but not committed"},
		{"empty dir", []string{committed, t.TempDir()}, 1, "no fixtures"},
		{"usage", []string{committed}, 2, "usage"},
		{"bad flag", []string{"-noise", "x", committed, committed}, 2, "invalid value"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(c.args, &stdout, &stderr)
		if code != c.code {
			t.Errorf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", c.name, code, c.code, &stdout, &stderr)
		}
		if all := stdout.String() + stderr.String(); !strings.Contains(all, c.out) {
			t.Errorf("%s: output lacks %q:\n%s", c.name, c.out, all)
		}
	}
}
