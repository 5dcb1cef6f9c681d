package wg

import (
	"fmt"
	"net/netip"
	"testing"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/netstack"
)

// BenchmarkNetstackTCPStdBind is the reference for BenchmarkNetstackTCP:
// the same two netstack devices, but over wireguard-go's own StdNetBind.
func BenchmarkNetstackTCPStdBind(b *testing.B) {
	type end struct {
		dev  *device.Device
		tnet *netstack.Net
		ip   netip.Addr
	}
	ka, pa := newKey(b)
	kb, pb := newKey(b)
	mk := func(ip string, k [32]byte, port int, peer [32]byte, peerIP string, peerPort int) end {
		td, tnet, err := netstack.CreateNetTUN([]netip.Addr{netip.MustParseAddr(ip)}, nil, DefaultMTU)
		if err != nil {
			b.Fatal(err)
		}
		dev := device.NewDevice(td, conn.NewStdNetBind(), device.NewLogger(device.LogLevelSilent, ""))
		cfg := fmt.Sprintf("private_key=%x\nlisten_port=%d\npublic_key=%x\nallowed_ip=%s/32\nendpoint=127.0.0.1:%d\n",
			k, port, peer, peerIP, peerPort)
		if err := dev.IpcSet(cfg); err != nil {
			b.Fatal(err)
		}
		if err := dev.Up(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(dev.Close)
		return end{dev, tnet, netip.MustParseAddr(ip)}
	}
	const portA, portB = 47811, 47812
	e1 := mk("100.64.0.1", ka, portA, pb, "100.64.0.2", portB)
	e2 := mk("100.64.0.2", kb, portB, pa, "100.64.0.1", portA)
	benchTCP(b, e1.tnet, e2.tnet, e2.ip)
}
