//go:build linux

package wg

import (
	"net"

	"golang.org/x/sys/unix"
)

const socketBuffer = 7 << 20

// tuneSocket raises the socket buffers (beyond net.core.*mem_max when the
// process has CAP_NET_ADMIN). Failures only cost throughput, so they are ignored.
func tuneSocket(uc *net.UDPConn) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		for _, o := range []int{unix.SO_RCVBUF, unix.SO_SNDBUF, unix.SO_RCVBUFFORCE, unix.SO_SNDBUFFORCE} {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o, socketBuffer)
		}
	})
}
