//go:build !windows

package main

import (
	"os"
	"syscall"
)

// detachAttr starts the spawned daemon in a session of its own, so that
// the CLI's terminal going away does not signal it.
func detachAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }

// privileged reports whether this process may create a TUN: root.
func privileged() bool { return os.Geteuid() == 0 }

// privilegeHint names the privilege TUN mode needs.
const privilegeHint = "root"
