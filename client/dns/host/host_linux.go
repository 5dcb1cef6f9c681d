package host

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/godbus/dbus/v5"
)

// systemd-resolved's resolv.conf files: the stub (nameserver 127.0.0.53)
// and the one listing the real upstream servers.
const (
	resolvedStub     = "/run/systemd/resolve/stub-resolv.conf"
	resolvedUplinks  = "/run/systemd/resolve/resolv.conf"
	resolvedStubAddr = "127.0.0.53"
)

// platform is the Linux mode state plus the seams tests replace.
type platform struct {
	file *fileState // file mode
	link *linkState // resolved mode

	dialBus     func() (*dbus.Conn, error) // system bus
	uplinksConf string                     // resolvedUplinks
	ifIndex     func(name string) (int, error)
	afterSettle func() // test hook: runs in the watcher between its two reads
}

func newPlatform() platform {
	return platform{
		dialBus:     func() (*dbus.Conn, error) { return dbus.ConnectSystemBus() },
		uplinksConf: resolvedUplinks,
		ifIndex:     interfaceIndex,
	}
}

func interfaceIndex(name string) (int, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return 0, err
	}
	return ifi.Index, nil
}

// startPlatform is called with mu held.
func (m *Manager) startPlatform() error {
	mode, err := m.detectMode()
	if err != nil {
		return err
	}
	m.mode = mode
	switch mode {
	case ModeResolved:
		return m.startResolved()
	case ModeFile:
		return m.startFile()
	}
	if o, err := ReadOriginal(m.cfg.ResolvConf); err == nil {
		m.orig = o
	}
	return nil
}

// detectMode resolves "auto": systemd-resolved when it is the host's
// resolver and answers on the bus and the overlay interface exists, else
// file mode.
func (m *Manager) detectMode() (string, error) {
	switch m.cfg.Mode {
	case ModeOff, ModeFile:
		return m.cfg.Mode, nil
	case ModeResolved:
		if _, err := m.plat.ifIndex(m.cfg.Interface); err != nil {
			return "", fmt.Errorf("resolved mode: interface %q: %w", m.cfg.Interface, err)
		}
		return ModeResolved, nil
	}
	if !resolvedIsHostResolver(m.cfg.ResolvConf) {
		return ModeFile, nil
	}
	if err := pingResolved(m.plat.dialBus); err != nil {
		m.log.Info("resolv.conf points at systemd-resolved but it does not answer; using file mode", "err", err)
		return ModeFile, nil
	}
	if _, err := m.plat.ifIndex(m.cfg.Interface); m.cfg.Interface == "" || err != nil {
		m.log.Info("systemd-resolved needs an interface for per-link DNS; using file mode", "interface", m.cfg.Interface)
		return ModeFile, nil
	}
	return ModeResolved, nil
}

// resolvedIsHostResolver reports whether path is systemd-resolved's file
// (a symlink to one of its files) or names its stub listener.
func resolvedIsHostResolver(path string) bool {
	if t, err := os.Readlink(path); err == nil {
		if !filepath.IsAbs(t) {
			t = filepath.Join(filepath.Dir(path), t)
		}
		t = filepath.Clean(t)
		if t == resolvedStub || t == resolvedUplinks {
			return true
		}
	}
	o, err := ReadOriginal(path)
	if err != nil {
		return false
	}
	for _, ns := range o.Nameservers {
		if ns.Addr().String() == resolvedStubAddr {
			return true
		}
	}
	return false
}

// updatePlatform is called with mu held in stateStarted.
func (m *Manager) updatePlatform() error {
	switch {
	case m.plat.file != nil:
		return m.rewriteOurs()
	case m.plat.link != nil:
		return m.applyLink()
	}
	return nil
}

// closeLocked undoes whatever Start did; safe when Start did only part.
func (m *Manager) closeLocked() error {
	var errs []error
	if f := m.plat.file; f != nil {
		if err := restoreFile(f.rec); err != nil {
			errs = append(errs, err)
		}
		m.plat.file = nil
	}
	if l := m.plat.link; l != nil {
		if err := revertLink(m.plat.dialBus, l.index); err != nil {
			errs = append(errs, err)
		}
		m.plat.link = nil
	}
	return errors.Join(errs...)
}

func (m *Manager) fillStatus(s *Status) {
	s.ResolvConf = m.cfg.ResolvConf
	if f := m.plat.file; f != nil {
		s.Backup = f.rec.Backup
	}
	if m.plat.link != nil {
		s.Interface = m.cfg.Interface
	}
}

// Undoers returns the crash-recovery functions for this package's journal
// kinds. They need nothing but the journal entry, treat "already restored"
// as success, and are no-ops when run twice.
func Undoers() map[string]func(name string, data map[string]string) error {
	return map[string]func(string, map[string]string) error{
		KindResolvConf: func(name string, data map[string]string) error {
			rec, err := recordFromData(name, data)
			if err != nil {
				return err
			}
			return restoreFile(rec)
		},
		KindResolvedLink: func(name string, data map[string]string) error {
			return undoLink(name, func() (*dbus.Conn, error) { return dbus.ConnectSystemBus() }, interfaceIndex)
		},
	}
}
