package service

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// DefaultUnitDir is where Install writes the unit: the administrator's
// unit directory, which overrides a packaged /lib/systemd/system unit.
const DefaultUnitDir = "/etc/systemd/system"

// Sentinel errors callers branch on.
var (
	// ErrUnsupported: not Linux.
	ErrUnsupported = errors.New("petrel service: not supported on this platform (it installs a systemd unit, Linux only)")
	// ErrNoSystemd: systemd is not the running init (a container, a chroot,
	// another init system).
	ErrNoSystemd = errors.New("systemd is not running on this host")
	// ErrForeign: the unit file exists and Install did not write it.
	ErrForeign = errors.New("unit file was not written by `petrel service install`")
	// ErrDaemonRunning: a daemon not started by systemd serves the socket.
	ErrDaemonRunning = errors.New("a petrel daemon that systemd did not start is running")
)

// Systemctl is the host's service manager, as Install and Uninstall use it.
type Systemctl interface {
	// Booted reports whether systemd is the running init, and the path
	// whose absence says it is not (for the error message).
	Booted() (bool, string)
	// Run runs `systemctl ARGS...`; the error carries its output.
	Run(args ...string) error
}

// Options say where and how the unit is installed or removed.
type Options struct {
	Unit    Config // what the unit runs (Install only)
	UnitDir string // directory of the unit file; "" = DefaultUnitDir
	// NoStart only writes or removes the file: no systemctl at all (tests,
	// images built without a running systemd).
	NoStart bool
	// Force replaces or removes a unit that Install did not write.
	Force bool
	// Systemctl is the service manager; nil = the host's systemctl.
	Systemctl Systemctl
	// DaemonRunning reports whether a daemon answers on the state
	// directory's socket (nil = never).
	DaemonRunning func() bool
}

// Action says what Install or Uninstall did to the unit file.
type Action int

const (
	Created   Action = iota + 1 // the unit was new
	Updated                     // an older unit was replaced
	Unchanged                   // the unit already had this text
	Removed                     // Uninstall removed the unit
	Absent                      // Uninstall found no unit: nothing to do
)

// Result is what Install or Uninstall did.
type Result struct {
	Path   string // the unit file
	Action Action
	// Started: systemctl enabled and (re)started the service.
	Started bool
}

func (o *Options) unitPath() string {
	dir := o.UnitDir
	if dir == "" {
		dir = DefaultUnitDir
	}
	return filepath.Join(dir, UnitName)
}

// readUnit returns the unit file's text, or exists=false.
func readUnit(path string) (text string, exists bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return string(b), true, nil
}

// ours reports whether the unit text was written by Install.
func ours(text string) bool {
	first, _, _ := strings.Cut(text, "\n")
	return first == Marker
}
