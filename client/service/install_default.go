//go:build !linux

package service

// HostSystemctl returns nil: there is no systemd here.
func HostSystemctl() Systemctl { return nil }

// Install returns ErrUnsupported: systemd units are Linux only.
func Install(Options) (Result, error) { return Result{}, ErrUnsupported }

// Uninstall returns ErrUnsupported: systemd units are Linux only.
func Uninstall(Options) (Result, error) { return Result{}, ErrUnsupported }
