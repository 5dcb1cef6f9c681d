//go:build linux

package route

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// nlOps is a netlink route handle plus the namespace it works in. The
// Manager owns one; Undoers and HostNetworks make a short-lived one for the
// calling thread's namespace.
type nlOps struct {
	h  *netlink.Handle
	ns netns.NsHandle // open only when working in another namespace
}

func openNL(nsPath string) (*nlOps, error) {
	if nsPath == "" {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return nil, fmt.Errorf("open netlink: %w", err)
		}
		return &nlOps{h: h, ns: netns.None()}, nil
	}
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", nsPath, err)
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("open netlink in %s: %w", nsPath, err)
	}
	return &nlOps{h: h, ns: ns}, nil
}

func (o *nlOps) close() {
	o.h.Close()
	if o.ns.IsOpen() {
		o.ns.Close()
	}
}

// inNS runs fn on a thread in o's namespace (for /proc/sys/net, which
// follows the calling thread's namespace).
func (o *nlOps) inNS(fn func() error) error {
	if !o.ns.IsOpen() {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		// No UnlockOSThread: the thread leaves with the goroutine, so its
		// changed namespace can never leak to other goroutines.
		runtime.LockOSThread()
		if err := netns.Set(o.ns); err != nil {
			errc <- fmt.Errorf("enter netns: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// gone reports whether err means "no such object" (undo treats it as done).
func gone(err error) bool {
	var lnf netlink.LinkNotFoundError
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENODEV) || errors.As(err, &lnf)
}

func toIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// fromIPNet converts a kernel destination; nil is the default route of family.
func fromIPNet(n *net.IPNet, family int) netip.Prefix {
	if n == nil {
		if family == unix.AF_INET6 {
			return netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
		return netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones)
}

func family(v6 bool) int {
	if v6 {
		return unix.AF_INET6
	}
	return unix.AF_INET
}

// --- rules ---

func toNLRule(r ruleSpec) *netlink.Rule {
	nr := netlink.NewRule()
	nr.Family = family(r.V6)
	nr.Priority = r.Pref
	nr.Table = r.Table
	nr.Invert = r.Invert
	nr.SuppressPrefixlen = r.Suppress
	if r.Mark != 0 {
		nr.Mark = r.Mark
		mask := uint32(0xffffffff)
		nr.Mask = &mask
	}
	if r.Dst.IsValid() {
		nr.Dst = toIPNet(r.Dst)
	}
	return nr
}

func ruleMatches(k netlink.Rule, r ruleSpec) bool {
	var dst netip.Prefix
	if k.Dst != nil {
		dst = fromIPNet(k.Dst, k.Family)
	}
	return k.Family == family(r.V6) && k.Priority == r.Pref && k.Table == r.Table &&
		k.Invert == r.Invert && k.Mark == r.Mark && k.SuppressPrefixlen == r.Suppress && dst == r.Dst
}

func (o *nlOps) addRule(r ruleSpec) error {
	if err := o.h.RuleAdd(toNLRule(r)); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add rule %s: %w", r, err)
	}
	return nil
}

// delRule deletes every copy of r; "not there" is success.
func (o *nlOps) delRule(r ruleSpec) error {
	for range 16 {
		if err := o.h.RuleDel(toNLRule(r)); err != nil {
			if gone(err) {
				return nil
			}
			return fmt.Errorf("delete rule %s: %w", r, err)
		}
	}
	return nil
}

// listRules returns the kernel's rules of both families.
func (o *nlOps) listRules() ([]netlink.Rule, error) {
	rs, err := o.h.RuleList(unix.AF_UNSPEC)
	if err != nil {
		return nil, fmt.Errorf("list rules: %w", err)
	}
	return rs, nil
}

// --- routes ---

func (o *nlOps) toNLRoute(r routeSpec, needLink bool) (*netlink.Route, error) {
	nr := &netlink.Route{Dst: toIPNet(r.Dst), Table: r.Table, Family: family(r.Dst.Addr().Is6())}
	if r.Unreachable {
		nr.Type = unix.RTN_UNREACHABLE
		return nr, nil
	}
	nr.Type = unix.RTN_UNICAST
	if r.Dst.Addr().Is4() {
		nr.Scope = netlink.SCOPE_LINK
	}
	l, err := o.h.LinkByName(r.Dev)
	if err != nil {
		if needLink || !gone(err) {
			return nil, fmt.Errorf("find link %s: %w", r.Dev, err)
		}
		return nr, nil
	}
	nr.LinkIndex = l.Attrs().Index
	return nr, nil
}

func (o *nlOps) addRoute(r routeSpec) error {
	nr, err := o.toNLRoute(r, true)
	if err != nil {
		return err
	}
	if err := o.h.RouteReplace(nr); err != nil {
		return fmt.Errorf("add route %s: %w", r, err)
	}
	return nil
}

// delRoute deletes r; "not there" is success. A device route whose device
// is gone went with it: deleting by destination alone could remove a route
// that replaced it on another device.
func (o *nlOps) delRoute(r routeSpec) error {
	nr, err := o.toNLRoute(r, false)
	if err != nil {
		return err
	}
	if !r.Unreachable && nr.LinkIndex == 0 {
		return nil
	}
	nr.Scope = netlink.SCOPE_NOWHERE // match any scope (as "ip route del" does)
	if err := o.h.RouteDel(nr); err != nil && !gone(err) {
		return fmt.Errorf("delete route %s: %w", r, err)
	}
	return nil
}

// routeMissing reports whether r is absent from the table listing ks (or
// present with another device or type).
func (o *nlOps) routeMissing(ks []netlink.Route, r routeSpec) bool {
	want := unix.RTN_UNICAST
	if r.Unreachable {
		want = unix.RTN_UNREACHABLE
	}
	idx := -1
	if !r.Unreachable {
		if l, err := o.h.LinkByName(r.Dev); err == nil {
			idx = l.Attrs().Index
		}
	}
	for _, k := range ks {
		if fromIPNet(k.Dst, k.Family) != r.Dst || k.Type != want {
			continue
		}
		if r.Unreachable || k.LinkIndex == idx {
			return false
		}
	}
	return true
}

func (o *nlOps) listTable(table int) ([]netlink.Route, error) {
	rs, err := o.h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list table %d: %w", table, err)
	}
	return rs, nil
}

// --- sysctls ---

func readSysctl(key string) (string, error) {
	b, err := os.ReadFile(sysctlPath(key))
	if err != nil {
		return "", fmt.Errorf("read sysctl %s: %w", key, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func writeSysctl(key, value string) error {
	if err := os.WriteFile(sysctlPath(key), []byte(value), 0o644); err != nil {
		return fmt.Errorf("write sysctl %s: %w", key, err)
	}
	return nil
}

// --- host facts ---

// lan returns the connected prefixes of every interface but lo and the
// overlay interface. Host-only addresses (/32, /128) carry no network.
func (o *nlOps) lan(overlay string) (hostLAN, error) {
	var out hostLAN
	links, err := o.h.LinkList()
	if err != nil {
		return out, fmt.Errorf("list links: %w", err)
	}
	seen := map[netip.Prefix]bool{}
	for _, l := range links {
		a := l.Attrs()
		if a.Name == overlay || a.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := o.h.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return out, fmt.Errorf("list addresses of %s: %w", a.Name, err)
		}
		for _, ad := range addrs {
			p := fromIPNet(ad.IPNet, 0).Masked()
			if !p.IsValid() || p.IsSingleIP() || seen[p] {
				continue
			}
			seen[p] = true
			if p.Addr().Is4() {
				out.v4 = append(out.v4, p)
			} else {
				out.v6 = append(out.v6, p)
			}
		}
	}
	return out, nil
}

// HostNetworks returns the main table's non-default destinations not via
// the interface exclude, and the addresses of every interface but exclude,
// in the calling thread's network namespace.
func HostNetworks(exclude string) (Host, error) {
	var h Host
	o, err := openNL("")
	if err != nil {
		return h, err
	}
	defer o.close()
	ex := -1
	if l, err := o.h.LinkByName(exclude); err == nil {
		ex = l.Attrs().Index
	}
	rs, err := o.listTable(tableMain)
	if err != nil {
		return h, err
	}
	for _, r := range rs {
		p := fromIPNet(r.Dst, r.Family)
		if !p.IsValid() || p.Bits() == 0 || r.LinkIndex == ex || r.Type != unix.RTN_UNICAST {
			continue
		}
		h.Routes = append(h.Routes, p)
	}
	addrs, err := o.h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return h, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		if a.LinkIndex == ex {
			continue
		}
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			h.Addrs = append(h.Addrs, ip.Unmap())
		}
	}
	return h, nil
}
