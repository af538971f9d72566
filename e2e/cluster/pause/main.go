// pause: the pod sandbox's process, as Kubernetes' own build/pause/linux/pause.c does it, in Go
// so that `CGO_ENABLED=0 go build` makes a static binary without a C toolchain. It holds the pod's
// namespaces open until told to stop. As PID 1 of the pod's PID namespace it must handle SIGINT
// and SIGTERM itself (the kernel ignores signals PID 1 has no handler for) and reap orphans.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sig {
		if s == syscall.SIGCHLD {
			for {
				var ws syscall.WaitStatus
				pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
			continue
		}
		os.Exit(0)
	}
}
