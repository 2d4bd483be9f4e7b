package inputfile

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	if err := os.WriteFile(small, []byte("job_conf:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 101), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"regular", small, ""},
		{"exactly the bound", filepath.Join(dir, "hundred"), ""},
		{"over the bound", big, big + " is 101 bytes, more than the 100 allowed"},
		{"fifo without a writer", fifo, fifo + " is a named pipe (FIFO), not a regular file"},
		{"device", "/dev/zero", "/dev/zero is a device, not a regular file"},
		{"directory", dir, dir + " is a directory, not a regular file"},
		{"missing", filepath.Join(dir, "nope"), "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "exactly the bound" {
				if err := os.WriteFile(tc.path, make([]byte, 100), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			b, err := Read(tc.path, 100)
			if tc.want == "" {
				want, _ := os.ReadFile(tc.path)
				if err != nil || string(b) != string(want) {
					t.Fatalf("Read = %q, %v; want %q", b, err, want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Read error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
