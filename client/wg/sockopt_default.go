//go:build !linux

package wg

import "net"

const socketBuffer = 7 << 20

// tuneSocket raises the socket buffers as far as the platform allows.
func tuneSocket(uc *net.UDPConn) {
	_ = uc.SetReadBuffer(socketBuffer)
	_ = uc.SetWriteBuffer(socketBuffer)
}
