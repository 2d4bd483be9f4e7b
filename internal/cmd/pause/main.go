// Command pause is the test node's pod sandbox process (internal/devinfra
// packs it into the sandbox image, which is never pulled): it sleeps until
// SIGINT or SIGTERM and, as PID 1 of a pod's shared PID namespace, reaps
// the zombies it inherits.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range ch {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
	}
}
