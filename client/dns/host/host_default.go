//go:build !linux

package host

import "petrel/internal/feature"

// platform holds no state off Linux: only mode "off" is supported.
type platform struct{}

func newPlatform() platform { return platform{} }

// startPlatform is called with mu held. Every mode but "off" needs a host
// integration this platform lacks: Start fails with a
// *feature.UnsupportedError and changes nothing.
func (m *Manager) startPlatform() error {
	if m.cfg.Mode != ModeOff {
		return feature.Unsupported(feature.DNSHost, "dns mode "+m.cfg.Mode, "pointing the host's resolver at the agent")
	}
	m.mode = ModeOff
	if o, err := ReadOriginal(m.cfg.ResolvConf); err == nil {
		m.orig = o
	}
	return nil
}

func (m *Manager) updatePlatform() error { return nil }

func (m *Manager) closeLocked() error { return nil }

func (m *Manager) fillStatus(s *Status) {}

// Undoers returns the crash-recovery functions for this package's journal
// kinds; nothing is journaled on this platform.
func Undoers() map[string]func(name string, data map[string]string) error {
	return map[string]func(string, map[string]string) error{}
}
