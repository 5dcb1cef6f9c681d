//go:build !linux

package route

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// ErrClosed is returned by Apply after Close.
var ErrClosed = errors.New("route manager closed")

// platform holds nothing on this platform: nothing is ever installed.
type platform struct{}

// Apply changes nothing on this platform. It returns nil for a config
// that needs no host changes, else a *platform.UnsupportedError per
// feature the config asks for (routes, exit node, routing peer).
func (m *Manager) Apply(cfg Config) (Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state == lcClosed {
		return Result{}, ErrClosed
	}
	return Result{}, unsupported(cfg)
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

// HostNetworks returns the addresses of the interfaces other than exclude
// and, for want of a routing table reader, their connected networks as the
// routes.
func HostNetworks(exclude string) (Host, error) {
	var h Host
	ifs, err := net.Interfaces()
	if err != nil {
		return h, fmt.Errorf("list interfaces: %w", err)
	}
	for _, ifc := range ifs {
		if ifc.Name == exclude {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			return h, fmt.Errorf("list addresses of %s: %w", ifc.Name, err)
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			ip = ip.Unmap()
			h.Addrs = append(h.Addrs, ip)
			ones, _ := ipn.Mask.Size()
			if p := netip.PrefixFrom(ip, ones).Masked(); ifc.Flags&net.FlagLoopback == 0 && p.Bits() > 0 && p.Bits() < ip.BitLen() {
				h.Routes = append(h.Routes, p)
			}
		}
	}
	return h, nil
}
