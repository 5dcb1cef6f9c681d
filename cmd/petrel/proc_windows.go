package main

import (
	"syscall"

	"golang.org/x/sys/windows"
)

// detachAttr starts the spawned daemon without a console and outside the
// CLI's process group, so that closing the console or Ctrl-C does not end
// it.
func detachAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{CreationFlags: windows.CREATE_NEW_PROCESS_GROUP | windows.DETACHED_PROCESS}
}

// privileged reports whether this process may create a Wintun adapter: an
// elevated (Administrator) token. os.Geteuid is always -1 on Windows.
func privileged() bool { return windows.GetCurrentProcessToken().IsElevated() }

// privilegeHint names the privilege TUN mode needs.
const privilegeHint = "Administrator"
