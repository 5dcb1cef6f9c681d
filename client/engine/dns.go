package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"

	"petrel/client/dns"
	dnshost "petrel/client/dns/host"
	"petrel/client/netx"
	"petrel/internal/feature"
	"petrel/proto/daemonpb"
	"petrel/proto/managementpb"
)

// DNS. The engine owns one client/dns Resolver (on the overlay address,
// port 53, in TUN mode; on a loopback address in netstack mode) and, in
// TUN mode, one client/dns/host Manager that points the host's resolver at
// it. It feeds the resolver the map's DNS config and the server domains,
// and routes its own control-plane dials (management, signal, relay)
// through the resolver's management-domain cache (dialControl), so they
// keep resolving whatever the overlay routes say.

type dnsState struct {
	mu   sync.Mutex
	res  *dns.Resolver    // nil until started (or when it could not start)
	host *dnshost.Manager // TUN mode with a listening resolver
	err  string           // shown in status
	orig []netip.AddrPort // the host's nameservers before we changed anything
	last dnsHostSettings  // last search/match domains given to the host
}

type dnsHostSettings struct{ search, match []string }

// startDNS starts the resolver and the host integration. Failures are
// reported in status and logged; they never stop the agent.
func (e *Engine) startDNS(overlay netip.Prefix) {
	d := &e.dns
	d.mu.Lock()
	defer d.mu.Unlock()
	if e.cfg.DNSMode == dnshost.ModeOff && !e.cfg.Netstack {
		d.err = "disabled (--dns-mode off)"
		return
	}
	path := e.cfg.ResolvConf
	if path == "" {
		path = dnshost.DefaultResolvConf
	}
	if orig, err := dnshost.ReadOriginal(path); err == nil {
		d.orig = orig.Nameservers
	} else {
		e.log.Warn("read the host's nameservers", "file", path, "err", err)
	}
	listen := netip.AddrPortFrom(overlay.Addr(), 53)
	groupDial := (&net.Dialer{}).DialContext // unmarked: follows overlay routes
	if e.cfg.Netstack {
		ap, err := netip.ParseAddrPort(cmpOr(e.cfg.DNSAddr, "127.0.0.1:0"))
		if err != nil || !ap.Addr().IsLoopback() {
			d.err = fmt.Sprintf("resolver address %q is not a loopback ip:port", e.cfg.DNSAddr)
			e.log.Warn("DNS resolver not started", "err", d.err)
			return
		}
		listen = ap
		groupDial = e.netstackDial
	}
	res, err := dns.New(dns.Config{
		Listen: []netip.AddrPort{listen}, Original: d.orig,
		Dial: netx.Dialer(e.cfg.Logger).DialContext, GroupDial: groupDial,
		OriginalDial: (&net.Dialer{}).DialContext, // follows an exit node like any program
		Logger:       e.cfg.Logger, NoBypass: e.cfg.DNSNoBypass, CacheTTL: e.cfg.DNSCacheTTL,
	})
	if err == nil {
		err = res.Start()
	}
	if err != nil {
		d.err = fmt.Sprintf("resolver not listening: %v", err)
		e.log.Warn("DNS resolver not started; peer names will not resolve for other programs", "err", err)
		if res != nil {
			_ = res.Close()
		}
		return
	}
	d.res = res
	e.log.Info("DNS resolver listening", "addrs", res.Addrs())
	if e.cfg.Netstack {
		return
	}
	hm, err := dnshost.New(dnshost.Config{ResolvConf: e.cfg.ResolvConf, StateDir: e.cfg.StateDir,
		Interface: e.cfg.InterfaceName, Nameserver: overlay.Addr(), Mode: e.cfg.DNSMode,
		Logger: e.cfg.Logger, Journal: e.cfg.Journal})
	if err == nil {
		err = hm.Start()
	}
	if err != nil {
		e.hostDNSFailed(err)
		return
	}
	d.host = hm
	e.log.Info("host resolver points at the agent", "mode", hm.Mode())
}

// hostDNSFailed reports why the host resolver was not pointed at the agent
// (dns.mu held): a platform without the integration as an unsupported
// feature (unsupported.go), anything else as the DNS error.
func (e *Engine) hostDNSFailed(err error) {
	us, err := feature.Split(err)
	e.setUnsupported(srcDNS, us)
	if err != nil {
		e.dns.err = fmt.Sprintf("host resolver not configured: %v", err)
		e.log.Warn("host resolver not pointed at the agent", "err", err)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (e *Engine) netstackDial(ctx context.Context, network, addr string) (net.Conn, error) {
	if e.dev == nil || e.dev.Netstack() == nil {
		return nil, errors.New("no netstack")
	}
	return e.dev.Netstack().DialContext(ctx, network, addr)
}

// stopDNS restores the host's resolver, then stops the resolver.
func (e *Engine) stopDNS() {
	d := &e.dns
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.host != nil {
		if err := d.host.Close(); err != nil {
			e.log.Warn("restore the host resolver", "err", err)
		}
		d.host = nil
	}
	if d.res != nil {
		_ = d.res.Close()
	}
}

// resolver returns the running resolver (nil if none).
func (e *Engine) resolver() *dns.Resolver {
	e.dns.mu.Lock()
	defer e.dns.mu.Unlock()
	return e.dns.res
}

// applyDNS feeds the resolver and the host the map's DNS config.
func (e *Engine) applyDNS(nm *managementpb.NetworkMap) {
	res := e.resolver()
	if res == nil || nm == nil {
		return
	}
	s := dnsSettings(nm, e.cfg.ManagementURL)
	e.mu.Lock()
	sc := e.serverCf
	e.mu.Unlock()
	s.ServerDomains = serverDomains(sc)
	res.Apply(s)
	e.dns.mu.Lock()
	defer e.dns.mu.Unlock()
	if e.dns.host == nil || s.Domain == "" {
		return
	}
	want := dnsHostSettings{search: []string{s.Domain}, match: matchDomains(s)}
	if slices.Equal(want.search, e.dns.last.search) && slices.Equal(want.match, e.dns.last.match) {
		return
	}
	if err := e.dns.host.Update(want.search, want.match); err != nil {
		e.log.Warn("update the host resolver", "err", err)
		return
	}
	e.dns.last = want
}

func matchDomains(s dns.Settings) []string {
	out := []string{s.Domain}
	for _, z := range s.Zones {
		out = append(out, strings.TrimSuffix(z.Domain, "."))
	}
	for _, g := range s.Groups {
		if g.Primary {
			out = append(out, "~.")
		}
		out = append(out, g.Domains...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// dnsSettings converts the map's DNS config.
func dnsSettings(nm *managementpb.NetworkMap, mgmtURL string) dns.Settings {
	s := dns.Settings{SearchDomain: true}
	if u, err := url.Parse(mgmtURL); err == nil {
		s.ManagementHost = u.Hostname()
	}
	if nm.Self != nil {
		if p, err := netip.ParsePrefix(nm.Self.Address); err == nil {
			s.OverlayPrefix = p.Masked()
		}
	}
	c := nm.Dns
	if c == nil {
		return s
	}
	s.Domain = c.Domain
	for _, z := range c.Zones {
		dz := dns.Zone{Domain: z.Domain}
		for _, r := range z.Records {
			dz.Records = append(dz.Records, dns.Record{Name: r.Name, Type: r.Type, Value: r.Value, TTL: r.Ttl})
		}
		s.Zones = append(s.Zones, dz)
	}
	for _, g := range c.NameserverGroups {
		dg := dns.NameserverGroup{ID: g.Id, Domains: g.Domains, Primary: g.Primary}
		for _, ns := range g.Nameservers {
			if ap, err := netip.ParseAddrPort(ns); err == nil {
				dg.Servers = append(dg.Servers, ap)
			} else if a, err := netip.ParseAddr(ns); err == nil {
				dg.Servers = append(dg.Servers, netip.AddrPortFrom(a, 53))
			}
		}
		s.Groups = append(s.Groups, dg)
	}
	return s
}

// serverDomains converts the management's server domains (all categories
// are carried whenever the message is present).
func serverDomains(sc *managementpb.ServerConfig) dns.ServerDomains {
	if sc == nil || sc.Domains == nil {
		return dns.ServerDomains{}
	}
	d := sc.Domains
	return dns.ServerDomains{Management: d.Management, Signal: d.Signal, RelayPoolRoots: d.RelayPoolRoots,
		STUN: d.Stun, Has: dns.AllCategories}
}

// dialControl dials a control-plane address over a marked socket,
// resolving its host through the resolver's management-domain cache first
// (the system resolver may point into the tunnel); it falls back to the
// system resolver when the cache has no answer.
func (e *Engine) dialControl(ctx context.Context, network, addr string) (net.Conn, error) {
	d := netx.Dialer(e.cfg.Logger)
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	res := e.resolver()
	if _, perr := netip.ParseAddr(host); perr == nil || res == nil {
		return d.DialContext(ctx, network, addr)
	}
	ips, lerr := res.LookupHost(ctx, host)
	if lerr != nil || len(ips) == 0 {
		e.log.Debug("control-plane name not in the DNS cache; using the system resolver", "host", host, "err", lerr)
		return d.DialContext(ctx, network, addr)
	}
	var errs []error
	for _, ip := range ips {
		c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.Unmap().String(), port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("dial %s: %w", addr, errors.Join(errs...))
}

// socksResolve resolves a SOCKS5 domain name through the resolver.
func (e *Engine) socksResolve(ctx context.Context, host string) (netip.Addr, error) {
	res := e.resolver()
	if res == nil {
		return netip.Addr{}, errors.New("no DNS resolver")
	}
	ips, err := res.LookupHost(ctx, host)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, ip := range ips { // IPv4 first: the overlay is IPv4
		if ip.Unmap().Is4() {
			return ip.Unmap(), nil
		}
	}
	if len(ips) == 0 {
		return netip.Addr{}, fmt.Errorf("%s: no address", host)
	}
	return ips[0], nil
}

// dnsStatus fills the status summary.
func (e *Engine) dnsStatus(st *daemonpb.StatusResponse) {
	d := &e.dns
	d.mu.Lock()
	defer d.mu.Unlock()
	info := &daemonpb.DNSInfo{Error: d.err, HostMode: dnshost.ModeOff}
	if d.res != nil {
		rs := d.res.Status()
		info.Listeners, info.Domain, info.Bypass = rs.Listeners, rs.Domain, len(rs.Bypass) > 0
	}
	if d.host != nil {
		hs := d.host.Status()
		info.HostMode = hs.Mode
		if hs.LastError != "" && info.Error == "" {
			info.Error = hs.LastError
		}
	}
	st.Dns = info
}

// DNSDetails is `petrel dns status`: the resolver's and the host's state.
type DNSDetails struct {
	Resolver *dns.Status     `json:"resolver"`
	Host     *dnshost.Status `json:"host"`
	Error    string          `json:"error,omitempty"`
}

// DNSStatus returns the resolver's and the host integration's state.
func (e *Engine) DNSStatus() DNSDetails {
	d := &e.dns
	d.mu.Lock()
	defer d.mu.Unlock()
	out := DNSDetails{Error: d.err}
	if d.res != nil {
		rs := d.res.Status()
		out.Resolver = &rs
	}
	if d.host != nil {
		hs := d.host.Status()
		out.Host = &hs
	}
	return out
}

// DNSQuery resolves name through the resolver (`petrel dns query`).
func (e *Engine) DNSQuery(ctx context.Context, name string, qtype uint16) (dns.Answer, error) {
	res := e.resolver()
	if res == nil {
		return dns.Answer{}, errors.New("the DNS resolver is not running: " + cmpOr(e.DNSStatus().Error, "agent not up"))
	}
	return res.Query(ctx, name, qtype)
}
