//go:build linux

package netx

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// MarkSupported reports whether this platform can mark sockets.
const MarkSupported = true

// markControl returns a Control function that sets SO_MARK. EPERM (no
// CAP_NET_ADMIN) is tolerated: the socket stays unmarked and the first
// occurrence is logged at debug level.
func markControl(log *slog.Logger, mark uint32) func(network, address string, c syscall.RawConn) error {
	var once sync.Once
	return func(network, address string, c syscall.RawConn) error {
		err := SetMark(c, mark)
		if errors.Is(err, unix.EPERM) {
			once.Do(func() {
				log.Debug("socket mark not permitted; control-plane sockets stay unmarked", "mark", mark)
			})
			return nil
		}
		return err
	}
}

// SetMark sets SO_MARK on an existing socket (for example the WireGuard bind's
// socket when the device is configured with an fwmark).
func SetMark(c syscall.RawConn, mark uint32) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
	}); err != nil {
		return fmt.Errorf("set socket mark: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("set socket mark: %w", serr)
	}
	return nil
}

// GetMark reads SO_MARK from a socket.
func GetMark(c syscall.RawConn) (uint32, error) {
	var (
		v    int
		serr error
	)
	if err := c.Control(func(fd uintptr) {
		v, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK)
	}); err != nil {
		return 0, fmt.Errorf("get socket mark: %w", err)
	}
	if serr != nil {
		return 0, fmt.Errorf("get socket mark: %w", serr)
	}
	return uint32(v), nil
}
