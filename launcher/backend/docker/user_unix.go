//go:build unix

package docker

import (
	"fmt"
	"os"
	"syscall"
)

// runAs is the container user: "" (the image's user) unless data_path is
// owned by a uid other than root, in which case that uid:gid, so the
// processes can write their logs there.
func runAs(dataPath string) (string, error) {
	if dataPath == "" {
		return "", nil
	}
	fi, err := os.Stat(dataPath)
	if err != nil {
		return "", fmt.Errorf("data_path: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 {
		return "", nil
	}
	return fmt.Sprintf("%d:%d", st.Uid, st.Gid), nil
}
