// Command pause is the pod sandbox of the local cluster's nodes (what
// registry.k8s.io/pause is elsewhere): the process that holds a pod's
// namespaces open. It is the pod's PID 1, so it reaps the zombies that
// processes sharing its PID namespace leave, and it exits 0 on SIGTERM or
// SIGINT (a PID 1 gets no default action for them: without handlers the
// kubelet's stop would wait for SIGKILL).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// SIGCHLD is coalesced by the kernel, so one buffered slot per kind is enough:
	// every delivery reaps all the children that have exited.
	signals := make(chan os.Signal, 3)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	// Before this point SIGTERM kills the process (the Go runtime's default):
	// the line tells a test when a signal will be handled instead.
	os.Stderr.WriteString("pause: waiting for SIGTERM or SIGINT\n")
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		reapExitedChildren()
	}
}

func reapExitedChildren() {
	for {
		pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}
