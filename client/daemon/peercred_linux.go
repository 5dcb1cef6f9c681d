package daemon

import (
	"errors"
	"net"

	"golang.org/x/sys/unix"
)

// peerUID reads the uid of the process at the other end of a unix socket
// (SO_PEERCRED).
// peerCredSupported: SO_PEERCRED tells the caller's uid.
const peerCredSupported = true

func peerUID(c net.Conn) (int, bool, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return 0, false, errors.New("not a unix socket")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0, false, err
	}
	var cred *unix.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, false, err
	}
	if serr != nil {
		return 0, false, serr
	}
	return int(cred.Uid), true, nil
}
