package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// NATKind selects the mapping behaviour of a NAT router.
type NATKind int

const (
	// EIM is endpoint-independent mapping (nft `masquerade`, port
	// preserving): one public port per host socket whatever the
	// destination, so UDP hole punching between two EIM NATs works.
	EIM NATKind = iota + 1
	// Symmetric maps every destination to a new random public port (nft
	// `masquerade random`): hole punching fails, traffic must be relayed.
	Symmetric
)

func (k NATKind) String() string {
	switch k {
	case EIM:
		return "eim"
	case Symmetric:
		return "symmetric"
	}
	return "none"
}

// ParseNATKind parses "eim" or "symmetric".
func ParseNATKind(s string) (NATKind, error) {
	switch s {
	case "eim", "EIM":
		return EIM, nil
	case "symmetric", "sym":
		return Symmetric, nil
	}
	return 0, fmt.Errorf("parse NAT kind %q: want eim or symmetric", s)
}

// Host is one namespace of the lab in which processes and sockets run.
type Host struct {
	lab *Lab
	// Name is the name it was added with.
	Name string
	// NS is the network namespace (usable with `ip netns exec`).
	NS string
	// Addr is the host's own IPv4 address (LAN address behind a NAT).
	Addr netip.Addr
	// PublicAddr is the address the internet sees: the NAT router's WAN
	// address, or Addr for a host on the bridge.
	PublicAddr netip.Addr
	// NAT is the router kind in front of the host (0 on the bridge).
	NAT NATKind
	// RouterNS is the NAT router namespace ("" on the bridge).
	RouterNS string
	// Dev is the host's uplink interface name inside NS.
	Dev string

	impairNS   string // namespace whose nft table carries loss and delay rules
	imp        sync.Mutex
	lossPct    int
	delay      time.Duration
	delayer    *delayer
	rateDevs   [2]devRef
	bridgePort string
}

type devRef struct{ ns, dev string }

// Interface names inside lab namespaces; each namespace has its own, so
// they repeat across namespaces but all carry the prefix.
func (l *Lab) devName(role string) string { return l.prefix + "-" + role }

// newNamespace journals, creates and prepares one namespace: loopback up,
// /etc/netns/<ns>/resolv.conf naming the lab DNS server.
func (l *Lab) newNamespace(ctx context.Context, ns string) error {
	if err := l.journal.addNamespace(ns); err != nil {
		return err
	}
	dir := filepath.Join("/etc/netns", ns)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	rc := fmt.Sprintf("# petrel lab %s\nnameserver %s\noptions timeout:2 attempts:2\n", l.prefix, DNSAddr)
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte(rc), 0o644); err != nil {
		return fmt.Errorf("write resolv.conf: %w", err)
	}
	// An empty hosts file keeps the machine's /etc/hosts entries out.
	if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte("127.0.0.1 localhost\n::1 localhost\n"), 0o644); err != nil {
		return fmt.Errorf("write hosts: %w", err)
	}
	if _, err := run(ctx, "", "ip", "netns", "add", ns); err != nil {
		return err
	}
	_, err := run(ctx, "", "ip", "-n", ns, "link", "set", "lo", "up")
	return err
}

func opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// AddInternet creates the "inet" namespace holding the bridge (address
// InternetGateway) that server hosts and NAT routers attach to. It is
// idempotent; AddServerHost and AddNATHost call it.
func (l *Lab) AddInternet() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.addInternetLocked()
}

func (l *Lab) addInternetLocked() error {
	if l.inet != nil {
		return nil
	}
	if l.closed {
		return fmt.Errorf("add internet: lab closed")
	}
	ctx, cancel := opCtx()
	defer cancel()
	ns := l.nsName("inet")
	if err := l.newNamespace(ctx, ns); err != nil {
		return fmt.Errorf("add internet: %w", err)
	}
	br := l.devName("br")
	for _, argv := range [][]string{
		{"ip", "-n", ns, "link", "add", br, "type", "bridge"},
		{"ip", "-n", ns, "addr", "add", netip.PrefixFrom(InternetGateway, InternetPrefix.Bits()).String(), "dev", br},
		{"ip", "-n", ns, "link", "set", br, "up"},
	} {
		if _, err := run(ctx, "", argv...); err != nil {
			return fmt.Errorf("add internet: %w", err)
		}
	}
	l.inet = &Host{lab: l, Name: "inet", NS: ns, Addr: InternetGateway, PublicAddr: InternetGateway, Dev: br}
	return nil
}

// Internet returns the bridge namespace's Host (nil before AddInternet),
// e.g. for tcpdump on the bridge.
func (l *Lab) Internet() *Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inet
}

// claimBridgeIPLocked reserves a bridge address, before any namespace for
// it is created.
func (l *Lab) claimBridgeIPLocked(addr netip.Addr) error {
	if !InternetPrefix.Contains(addr) || addr == InternetGateway || addr == InternetPrefix.Masked().Addr() ||
		addr == netip.AddrFrom4([4]byte{203, 0, 113, 255}) {
		return fmt.Errorf("address %s not usable in %s", addr, InternetPrefix)
	}
	if l.bridgeIPs[addr] {
		return fmt.Errorf("address %s already on the bridge", addr)
	}
	l.bridgeIPs[addr] = true
	return nil
}

// attachLocked connects namespace ns to the bridge with a veth whose inner
// end is dev carrying addr/24, and a default route via InternetGateway.
func (l *Lab) attachLocked(ctx context.Context, ns, dev string, addr netip.Addr) (string, error) {
	l.nextPort++
	port := l.devName(fmt.Sprintf("b%d", l.nextPort))
	br := l.devName("br")
	inet := l.inet.NS
	for _, argv := range [][]string{
		{"ip", "link", "add", dev, "netns", ns, "type", "veth", "peer", "name", port, "netns", inet},
		{"ip", "-n", inet, "link", "set", port, "master", br},
		{"ip", "-n", inet, "link", "set", port, "up"},
		{"ip", "-n", ns, "addr", "add", netip.PrefixFrom(addr, InternetPrefix.Bits()).String(), "dev", dev},
		{"ip", "-n", ns, "link", "set", dev, "up"},
		{"ip", "-n", ns, "route", "add", "default", "via", InternetGateway.String()},
	} {
		if _, err := run(ctx, "", argv...); err != nil {
			return "", fmt.Errorf("attach %s: %w", ns, err)
		}
	}
	return port, nil
}

// AddServerHost creates a host directly on the internet bridge with the
// public address ip (inside InternetPrefix), e.g. for petrel-server or a
// relay instance.
func (l *Lab) AddServerHost(name string, ip netip.Addr) (*Host, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.reserve(name); err != nil {
		return nil, err
	}
	if err := l.addInternetLocked(); err != nil {
		return nil, err
	}
	if err := l.claimBridgeIPLocked(ip); err != nil {
		return nil, fmt.Errorf("add server host %s: %w", name, err)
	}
	ctx, cancel := opCtx()
	defer cancel()
	ns := l.nsName(name)
	if err := l.newNamespace(ctx, ns); err != nil {
		return nil, fmt.Errorf("add server host %s: %w", name, err)
	}
	dev := l.devName("e0")
	port, err := l.attachLocked(ctx, ns, dev, ip)
	if err != nil {
		return nil, fmt.Errorf("add server host %s: %w", name, err)
	}
	h := &Host{
		lab: l, Name: name, NS: ns, Addr: ip, PublicAddr: ip, Dev: dev,
		impairNS:   ns,
		rateDevs:   [2]devRef{{ns, dev}, {l.inet.NS, port}},
		bridgePort: port,
	}
	l.hosts[name] = h
	return h, nil
}

// natRuleset is the router's nftables ruleset (LAB.md recipe); masq is
// "masquerade" or "masquerade random".
func natRuleset(lan, wan, masq string) string {
	return fmt.Sprintf(`table ip nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname %[2]q %[3]s
  }
}
table inet filter {
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname %[1]q oifname %[2]q accept
  }
  chain input {
    type filter hook input priority filter; policy accept;
    iifname %[2]q ct state established,related accept
    iifname %[2]q ip protocol icmp accept
    iifname %[2]q drop
  }
}
`, lan, wan, masq)
}

// AddNATHost creates a host namespace on its own LAN (192.168.N.0/24, host
// .2, router .1) behind a NAT router namespace whose WAN (203.0.113.100+N)
// is on the internet bridge.
func (l *Lab) AddNATHost(name string, kind NATKind) (*Host, error) {
	if kind != EIM && kind != Symmetric {
		return nil, fmt.Errorf("add NAT host %s: unknown NAT kind %d", name, kind)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.reserve(name); err != nil {
		return nil, err
	}
	if l.nextLAN > 150 {
		return nil, fmt.Errorf("add NAT host %s: too many NAT hosts", name)
	}
	if err := l.addInternetLocked(); err != nil {
		return nil, err
	}
	ctx, cancel := opCtx()
	defer cancel()
	n := l.nextLAN
	wanAddr := netip.AddrFrom4([4]byte{203, 0, 113, byte(100 + n)})
	if err := l.claimBridgeIPLocked(wanAddr); err != nil {
		return nil, fmt.Errorf("add NAT host %s: WAN %w", name, err)
	}
	l.nextLAN++
	hostNS, routerNS := l.nsName(name), l.nsName(name+"-nat")
	for _, ns := range []string{hostNS, routerNS} {
		if err := l.newNamespace(ctx, ns); err != nil {
			return nil, fmt.Errorf("add NAT host %s: %w", name, err)
		}
	}
	lanGW := netip.AddrFrom4([4]byte{192, 168, byte(n), 1})
	hostAddr := netip.AddrFrom4([4]byte{192, 168, byte(n), 2})
	dev, lan, wan := l.devName("e0"), l.devName("lan"), l.devName("wan")
	port, err := l.attachLocked(ctx, routerNS, wan, wanAddr)
	if err != nil {
		return nil, fmt.Errorf("add NAT host %s: %w", name, err)
	}
	masq := "masquerade"
	if kind == Symmetric {
		masq = "masquerade random"
	}
	steps := [][]string{
		{"ip", "link", "add", dev, "netns", hostNS, "type", "veth", "peer", "name", lan, "netns", routerNS},
		{"ip", "-n", routerNS, "addr", "add", lanGW.String() + "/24", "dev", lan},
		{"ip", "-n", routerNS, "link", "set", lan, "up"},
		{"ip", "-n", hostNS, "addr", "add", hostAddr.String() + "/24", "dev", dev},
		{"ip", "-n", hostNS, "link", "set", dev, "up"},
		{"ip", "-n", hostNS, "route", "add", "default", "via", lanGW.String()},
		{"ip", "netns", "exec", routerNS, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
	}
	for _, argv := range steps {
		if _, err := run(ctx, "", argv...); err != nil {
			return nil, fmt.Errorf("add NAT host %s: %w", name, err)
		}
	}
	if _, err := nsRun(ctx, routerNS, natRuleset(lan, wan, masq), "nft", "-f", "-"); err != nil {
		return nil, fmt.Errorf("add NAT host %s: load NAT rules: %w", name, err)
	}
	h := &Host{
		lab: l, Name: name, NS: hostNS, Addr: hostAddr, PublicAddr: wanAddr,
		NAT: kind, RouterNS: routerNS, Dev: dev,
		impairNS:   routerNS,
		rateDevs:   [2]devRef{{routerNS, wan}, {l.inet.NS, port}},
		bridgePort: port,
	}
	l.hosts[name] = h
	return h, nil
}

// AddHost creates a bare namespace (loopback only, resolv.conf written);
// link it to others with Connect. The benchmark rigs use it.
func (l *Lab) AddHost(name string) (*Host, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.reserve(name); err != nil {
		return nil, err
	}
	ctx, cancel := opCtx()
	defer cancel()
	ns := l.nsName(name)
	if err := l.newNamespace(ctx, ns); err != nil {
		return nil, fmt.Errorf("add host %s: %w", name, err)
	}
	h := &Host{lab: l, Name: name, NS: ns}
	l.hosts[name] = h
	return h, nil
}

// Connect links two bare hosts with a veth pair carrying pa and pb and the
// given MTU (0 keeps 1500). It sets Addr of a host that has none. It returns
// the interface name used on both sides.
func (l *Lab) Connect(a, b *Host, pa, pb netip.Prefix, mtu int) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return "", fmt.Errorf("connect %s-%s: lab closed", a.Name, b.Name)
	}
	ctx, cancel := opCtx()
	defer cancel()
	l.nextPort++
	dev := l.devName(fmt.Sprintf("v%d", l.nextPort))
	steps := [][]string{{"ip", "link", "add", dev, "netns", a.NS, "type", "veth", "peer", "name", dev, "netns", b.NS}}
	for _, s := range []struct {
		h *Host
		p netip.Prefix
	}{{a, pa}, {b, pb}} {
		steps = append(steps, []string{"ip", "-n", s.h.NS, "addr", "add", s.p.String(), "dev", dev})
		if mtu > 0 {
			steps = append(steps, []string{"ip", "-n", s.h.NS, "link", "set", dev, "mtu", fmt.Sprint(mtu)})
		}
		steps = append(steps, []string{"ip", "-n", s.h.NS, "link", "set", dev, "up"})
	}
	for _, argv := range steps {
		if _, err := run(ctx, "", argv...); err != nil {
			return "", fmt.Errorf("connect %s-%s: %w", a.Name, b.Name, err)
		}
	}
	for _, s := range []struct {
		h *Host
		p netip.Prefix
	}{{a, pa}, {b, pb}} {
		if !s.h.Addr.IsValid() {
			s.h.Addr, s.h.PublicAddr, s.h.Dev = s.p.Addr(), s.p.Addr(), dev
		}
	}
	return dev, nil
}
