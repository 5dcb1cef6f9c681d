//go:build !linux

package dns

import "syscall"

// reusePortSupported: elsewhere the UDP readers share one socket.
const reusePortSupported = false

func setReusePort(_, _ string, _ syscall.RawConn) error { return nil }
