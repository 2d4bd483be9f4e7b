package mnist

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIDXDir(t *testing.T) {
	if _, err := IDXDir(context.Background(), "/nonexistent/go"); err == nil || !strings.Contains(err.Error(), Module) {
		t.Errorf("IDXDir with a missing go command: %v, want an error naming %s", err, Module)
	}
	if testing.Short() {
		t.Skip("downloads a module")
	}
	dir, err := IDXDir(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("MNIST IDX file missing: %v", err)
		}
	}
}
