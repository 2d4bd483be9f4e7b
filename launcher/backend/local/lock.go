package local

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// A supervisor's liveness is a lock it holds. Create takes an exclusive
// flock on the process's lock file and starts the supervisor with that open
// file as descriptor lockFD; the supervisor keeps it (close-on-exec, so the
// runtime process does not) until it exits, however it exits: the kernel
// drops the lock with the last descriptor of the open file. So the lock is
// held from before the supervisor starts until it is gone, no pid can be
// mistaken for another process's, and nothing reads /proc: it works
// wherever flock does (Linux, macOS, the BSDs).
const lockFD = 3 // the first of exec.Cmd.ExtraFiles

// lockFile creates (or opens) path and takes its exclusive lock.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("local backend: lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("local backend: locking %s: %w", path, err)
	}
	return f, nil
}

// held reports whether someone holds path's lock: a shared lock of our own
// would conflict with it.
func held(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return false, syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}

// alive reports whether p's supervisor still runs. State written before
// lock files existed has none: then the pid's existence is all there is.
func alive(p procState) bool {
	if p.LockFile == "" {
		err := syscall.Kill(p.Pid, 0)
		return err == nil || errors.Is(err, syscall.EPERM)
	}
	ok, err := held(p.LockFile)
	return err == nil && ok
}

// inheritedLock marks the supervisor's inherited lock descriptor
// close-on-exec and returns it; the supervisor keeps it open (out of the
// garbage collector's reach) for its whole life.
func inheritedLock() *os.File {
	syscall.CloseOnExec(lockFD)
	return os.NewFile(lockFD, "supervisor lock")
}
