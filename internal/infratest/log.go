package infratest

import (
	"io"
	"log"
)

// nopLogger silences the registry's per-request log lines in test output.
func nopLogger() *log.Logger { return log.New(io.Discard, "", 0) }
