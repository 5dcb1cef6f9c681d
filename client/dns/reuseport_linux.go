package dns

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePortSupported says whether listenUDP can give each UDP reader its
// own SO_REUSEPORT socket (the kernel spreads flows over them).
const reusePortSupported = true

// setReusePort is a net.ListenConfig.Control that sets SO_REUSEPORT.
func setReusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	return serr
}
