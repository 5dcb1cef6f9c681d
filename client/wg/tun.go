package wg

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
)

// Kernel TUN setup. Linux configures the interface over netlink
// (tun_linux.go); the other platforms create it with wireguard-go's
// tun.CreateTUN (utun on macOS, /dev/tun on FreeBSD, Wintun on Windows)
// and configure it with the system's own tools (tun_default.go), whose
// command lines are built here, for every platform, so that they are
// tested everywhere.

// DefaultInterfaceName is the kernel TUN name used when none is given:
// "petrel0", except on macOS, whose TUN interfaces must be named utunN
// ("utun" lets the kernel pick N).
func DefaultInterfaceName() string { return defaultInterfaceName(runtime.GOOS) }

func defaultInterfaceName(goos string) string {
	if goos == "darwin" {
		return "utun"
	}
	return "petrel0"
}

// InterfaceName is the kernel TUN's name as the system gave it (on macOS
// "utun" becomes "utun7", say); "" in netstack mode.
func (d *Device) InterfaceName() string {
	if d.cfg.Netstack {
		return ""
	}
	if n, err := d.tun.Name(); err == nil && n != "" {
		return n
	}
	return d.cfg.InterfaceName
}

// setupCommands returns the commands that give the TUN name (already
// created, MTU set) the overlay address addr and a route to the overlay
// prefix on goos, in order. A route command's "File exists" answer means
// the system already added the route (tun_default.go tolerates it).
func setupCommands(goos, name string, mtu int, addr netip.Prefix) ([][]string, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if !addr.IsValid() {
		return nil, fmt.Errorf("invalid address %v", addr)
	}
	ip, overlay := addr.Addr(), addr.Masked()
	switch goos {
	case "darwin", "freebsd":
		// A TUN is point-to-point: the address is its own peer, and the
		// overlay prefix needs a route of its own.
		fam, assign := "-inet", []string{"ifconfig", name, "inet", addr.String(), ip.String(), "alias"}
		if ip.Is6() {
			fam, assign = "-inet6", []string{"ifconfig", name, "inet6", addr.String(), "alias"}
		}
		return [][]string{
			assign,
			{"ifconfig", name, "up"},
			{"route", "-q", "-n", "add", fam, overlay.String(), "-interface", name},
		}, nil
	case "windows":
		// The on-link route to the overlay prefix comes with the address.
		if ip.Is6() {
			return [][]string{
				{"netsh", "interface", "ipv6", "set", "subinterface", name, "mtu=" + strconv.Itoa(mtu), "store=active"},
				{"netsh", "interface", "ipv6", "add", "address", name, addr.String(), "store=active"},
			}, nil
		}
		mask := net.IP(net.CIDRMask(addr.Bits(), 32)).String()
		return [][]string{
			{"netsh", "interface", "ipv4", "set", "subinterface", name, "mtu=" + strconv.Itoa(mtu), "store=active"},
			{"netsh", "interface", "ipv4", "set", "address", "name=" + name, "source=static",
				"address=" + ip.String(), "mask=" + mask, "store=active"},
		}, nil
	}
	return nil, fmt.Errorf("kernel TUN mode is not implemented on %s; use netstack mode", goos)
}

// deleteCommands returns the commands that remove a TUN a crashed agent
// left behind on goos. Only FreeBSD keeps one: macOS's utun and Wintun
// adapters go with the process (and Wintun reuses an adapter of the same
// name), Linux uses netlink.
func deleteCommands(goos, name string) ([][]string, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if goos == "freebsd" {
		return [][]string{{"ifconfig", name, "destroy"}}, nil
	}
	return nil, nil
}

// checkName refuses interface names that a system tool would take for
// something else (an option, a second argument, a netsh key=value).
func checkName(name string) error {
	if name == "" || strings.HasPrefix(name, "-") || strings.ContainsAny(name, " \t\n\r=\"'/\\") {
		return fmt.Errorf("invalid interface name %q", name)
	}
	return nil
}

// removeKernelTUN deletes the interface if closing the TUN left it behind
// (it normally goes with the TUN).
func removeKernelTUN(cfg DeviceConfig) error {
	if cfg.Netstack {
		return nil
	}
	return DeleteInterface(cfg.InterfaceName)
}

// createHint is appended to a failed tun.CreateTUN's error on goos.
func createHint(goos string) string {
	switch goos {
	case "darwin":
		return " (macOS TUN names are utun or utunN)"
	case "windows":
		return " (Wintun: wintun.dll must be next to petrel.exe or in the system directory)"
	}
	return ""
}
