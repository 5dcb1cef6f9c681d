//go:build linux

package wg

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.zx2c4.com/wireguard/tun"
)

// createKernelTUN creates the TUN interface, assigns addr and sets it up.
func createKernelTUN(name string, mtu int, addr netip.Prefix) (tun.Device, error) {
	td, err := tun.CreateTUN(name, mtu)
	if err != nil {
		return nil, fmt.Errorf("create tun %s: %w", name, err)
	}
	fail := func(err error) (tun.Device, error) {
		td.Close()
		return nil, err
	}
	real, err := td.Name()
	if err != nil {
		return fail(fmt.Errorf("read tun name: %w", err))
	}
	link, err := netlink.LinkByName(real)
	if err != nil {
		return fail(fmt.Errorf("find link %s: %w", real, err))
	}
	ipn := &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), addr.Addr().BitLen())}
	if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: ipn}); err != nil {
		return fail(fmt.Errorf("add address %s to %s: %w", addr, real, err))
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fail(fmt.Errorf("set %s up: %w", real, err))
	}
	return td, nil
}

// DeleteInterface removes the interface name if closing its TUN (or a
// crash) left it behind; a missing interface is success.
func DeleteInterface(name string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("find link %s: %w", name, err)
	}
	if err := netlink.LinkDel(link); err != nil {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}
