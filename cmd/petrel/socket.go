package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"petrel/client/daemon"
)

// Where the CLI finds the daemon (docs/cli.md): --socket if given; else the
// system agent's socket (daemon.SystemSocket) when it exists and this
// command uses the default state dir (its user's or the system's); else
// STATE_DIR/petrel.sock.

// errNoDaemon: nothing listens on the socket.
var errNoDaemon = errors.New("no petrel daemon")

// errSocketPermission: this user may not open the socket (or its
// directory).
var errSocketPermission = errors.New("permission denied")

// discoverSocket is the socket the CLI talks to for stateDir (absolute)
// when --socket is not given.
func discoverSocket(stateDir string) string {
	if stateDir == defaultStateDir() || stateDir == daemon.SystemStateDir {
		if _, err := os.Lstat(daemon.SystemSocket); err == nil || errors.Is(err, fs.ErrPermission) {
			return daemon.SystemSocket
		}
	}
	return filepath.Join(stateDir, daemon.SocketFile)
}

// daemonSocket is where a daemon started with these flags listens: the
// system socket for a root daemon in TUN mode with the system state dir,
// else what the CLI uses.
func (f *daemonFlags) daemonSocket(g *globalFlags) string {
	if g.socket == "" && !f.netstack && os.Geteuid() == 0 && g.stateDir == daemon.SystemStateDir {
		return daemon.SystemSocket
	}
	if g.socket != "" {
		return g.socket
	}
	return filepath.Join(g.stateDir, daemon.SocketFile)
}

// dialError says why the socket did not open: a permission problem is
// not "no daemon".
func dialError(socket string, err error) error {
	if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) || errors.Is(err, fs.ErrPermission) {
		hint := "use sudo"
		if strings.HasPrefix(socket, daemon.SystemRunDir+"/") {
			hint = "add yourself to the " + daemon.DefaultOperatorGroup + " group (then log in again) or use sudo"
		}
		return fmt.Errorf("%w on %s: %s", errSocketPermission, socket, hint)
	}
	return fmt.Errorf("%w at %s (start one with `petrel up` or `petrel daemon`): %w", errNoDaemon, socket, err)
}
