//go:build !linux

package route

import (
	"errors"
	"fmt"
	"runtime"
)

// ErrClosed is returned by Apply after Close.
var ErrClosed = errors.New("route manager closed")

// errUnsupported is returned when a Config needs host changes this
// platform cannot make.
var errUnsupported = fmt.Errorf("host routes are not supported on this platform (%s)", runtime.GOOS)

// platform holds nothing on this platform.
type platform struct{}

// Apply accepts netstack-mode configs (empty Interface) and refuses others.
func (m *Manager) Apply(cfg Config) (Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state == lcClosed {
		return Result{}, ErrClosed
	}
	if cfg.Interface != "" {
		return Result{}, errUnsupported
	}
	return Result{}, nil
}

// Close marks the Manager closed; nothing was installed.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.state = lcClosed
	return nil
}

// Undoers returns no undoers: nothing is journaled on this platform.
func Undoers() map[string]func(name string, data map[string]string) error {
	return map[string]func(string, map[string]string) error{}
}

// HostNetworks is not supported on this platform.
func HostNetworks(exclude string) (Host, error) { return Host{}, errUnsupported }
