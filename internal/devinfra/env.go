package devinfra

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// envPath is $name, or def when unset, made absolute: daemons and the
// files naming their paths must not depend on the caller's directory.
func envPath(name, def string) (string, error) {
	v := os.Getenv(name)
	if v == "" {
		v = def
	}
	p, err := filepath.Abs(v)
	if err != nil {
		return "", fmt.Errorf("%s=%q: %w", name, v, err)
	}
	return p, nil
}

// envInt is $name as an integer in [lo, hi], or def when unset.
func envInt(name string, def, lo, hi int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s=%q: want an integer from %d to %d", name, v, lo, hi)
	}
	return n, nil
}

// envPort is $name as a TCP port, or def when unset.
func envPort(name string, def int) (int, error) { return envInt(name, def, 1, 65535) }
