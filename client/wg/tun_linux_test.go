//go:build linux

package wg

import (
	"context"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// TestKernelTUN runs one device in kernel TUN mode and one in netstack mode
// inside a fresh network namespace and pings both ways across the overlay.
func TestKernelTUN(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("kernel TUN mode needs root (CAP_NET_ADMIN, /dev/net/tun); netstack tests cover the rest")
	}
	// The thread enters a new namespace and is never unlocked, so the
	// runtime discards it when the test goroutine ends.
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		t.Skipf("cannot create network namespace: %v", err)
	}
	defer ns.Close()
	defer netns.Set(orig)
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("no /dev/net/tun: %v", err)
	}

	mk := func(ip string, netstackMode bool) *node {
		k, pub := newKey(t)
		n := &node{key: k, pub: pub, ip: netip.MustParseAddr(ip)}
		n.bind = NewBind(BindConfig{ListenAddr: netip.MustParseAddr("127.0.0.1"), Logger: testLogger(t)})
		n.dev, err = NewDevice(DeviceConfig{
			Netstack:      netstackMode,
			InterfaceName: "petreltest0",
			Address:       netip.PrefixFrom(n.ip, 16),
			PrivateKey:    k,
			Bind:          n.bind,
			Logger:        testLogger(t),
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	a := mk("100.64.0.1", false)
	b := mk("100.64.0.2", true)
	defer b.dev.Close()
	defer a.dev.Close()
	if a.dev.Netstack() != nil {
		t.Fatal("TUN mode returned a netstack")
	}
	link, err := netlink.LinkByName("petreltest0")
	if err != nil {
		t.Fatalf("interface missing: %v", err)
	}
	if link.Attrs().MTU != DefaultMTU || link.Attrs().Flags&(1<<0) == 0 {
		t.Fatalf("link mtu %d flags %v", link.Attrs().MTU, link.Attrs().Flags)
	}
	// wireguard-go's CreateTUN turns on IFF_VNET_HDR with TSO/GRO when the
	// kernel has them; the device then reads and writes batches.
	if bs := a.dev.tun.BatchSize(); bs <= 1 {
		t.Errorf("kernel TUN batch size %d: TUN offloads are off", bs)
	}
	if err := a.dev.UpsertPeer(b.pub, []netip.Prefix{netip.PrefixFrom(b.ip, 32)}, b.udpEndpoint(), 0); err != nil {
		t.Fatal(err)
	}
	if err := b.dev.UpsertPeer(a.pub, []netip.Prefix{netip.PrefixFrom(a.ip, 32)}, a.udpEndpoint(), 0); err != nil {
		t.Fatal(err)
	}
	waitPing(t, b, a.ip, 30*time.Second) // netstack -> kernel
	waitPing(t, a, b.ip, 30*time.Second) // kernel ICMP socket -> netstack
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := a.dev.Ping(ctx, b.ip); err != nil {
		t.Fatal(err)
	}
	if err := a.dev.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName("petreltest0"); err == nil {
		t.Fatal("interface still present after Close")
	}
}
