//go:build !linux

package host

import (
	"errors"
	"fmt"
)

// platform holds no state off Linux: only mode "off" is supported.
type platform struct{}

func newPlatform() platform { return platform{} }

// startPlatform is called with mu held. "auto" means "off" here.
func (m *Manager) startPlatform() error {
	switch m.cfg.Mode {
	case ModeFile, ModeResolved:
		return fmt.Errorf("dns host mode %q is only available on Linux: %w", m.cfg.Mode, errors.ErrUnsupported)
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
