//go:build linux

package wg

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// childEnv marks the re-executed test process that runs inside its own
// network namespace.
const childEnv = "PETREL_WG_TEST_NETNS_CHILD"

// TestKernelTUN runs one device in kernel TUN mode and one in netstack mode
// inside a fresh network namespace and pings both ways across the overlay.
//
// The whole test process must live in that namespace: wireguard-go brings
// the device up from its own TUN-event goroutine too, and a bind opened
// there on a thread outside a per-thread namespace would listen in the
// wrong one (seen as a rare "no ping reply" when only the test thread
// switched). So the test re-executes itself under `unshare -n`.
func TestKernelTUN(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("kernel TUN mode needs root (CAP_NET_ADMIN, /dev/net/tun); netstack tests cover the rest")
	}
	if os.Getenv(childEnv) == "" {
		unshare, err := exec.LookPath("unshare")
		if err != nil {
			t.Skipf("no unshare(1) to run the test in its own network namespace: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, unshare, "-n", os.Args[0], "-test.run", "^TestKernelTUN$", "-test.count", "1", "-test.v")
		cmd.Env = append(os.Environ(), childEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("test in a new network namespace: %v\n%s", err, out)
		}
		if strings.Contains(string(out), "--- SKIP: TestKernelTUN") {
			t.Skipf("skipped in the child:\n%s", out)
		}
		if !strings.Contains(string(out), "--- PASS: TestKernelTUN") {
			t.Fatalf("child did not pass:\n%s", out)
		}
		return
	}
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
