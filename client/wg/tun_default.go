//go:build !linux

package wg

import (
	"errors"
	"net/netip"

	"golang.zx2c4.com/wireguard/tun"
)

// KernelTUNSupported reports whether kernel TUN mode exists on this platform.
const KernelTUNSupported = false

var errNoKernelTUN = errors.New("kernel tun mode not supported on this platform; use netstack")

func createKernelTUN(string, int, netip.Prefix) (tun.Device, error) { return nil, errNoKernelTUN }

func removeKernelTUN(DeviceConfig) error { return nil }
