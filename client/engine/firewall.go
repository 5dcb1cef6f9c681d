package engine

import (
	"fmt"
	"net/netip"
	"strings"

	"petrel/client/firewall"
	"petrel/client/wg"
	"petrel/internal/keys"
	"petrel/proto/daemonpb"
	"petrel/proto/managementpb"
)

// Firewall. The engine owns one client/firewall Filter, installed as the
// WireGuard device's packet filter in TUN and netstack mode, and feeds it
// the map's rules on every map change: peer sets become the rules' remote
// addresses, the networks this agent routes for others become Routed (so
// forwarded packets are checked too). The filter swaps its compiled table
// atomically; flows the new rules no longer allow are cut at their next
// packet.

// The filter judges wireguard-go's batches whole (client/firewall/batch.go).
var _ wg.BatchPacketFilter = (*firewall.Filter)(nil)

// firewallConfig converts the map's rules.
func firewallConfig(nm *managementpb.NetworkMap, self keys.Public) firewall.Config {
	var cfg firewall.Config
	if nm == nil {
		return cfg
	}
	if nm.Self != nil {
		if p, err := netip.ParsePrefix(nm.Self.Address); err == nil {
			cfg.Self = append(cfg.Self, netip.PrefixFrom(p.Addr(), p.Addr().BitLen()))
		}
	}
	sets := make(map[string][]netip.Prefix, len(nm.PeerSets))
	for _, s := range nm.PeerSets {
		for _, ip := range s.Ips {
			if a, err := netip.ParseAddr(ip); err == nil {
				sets[s.Id] = append(sets[s.Id], netip.PrefixFrom(a, a.BitLen()))
			} else if p, err := netip.ParsePrefix(ip); err == nil {
				sets[s.Id] = append(sets[s.Id], p.Masked())
			}
		}
	}
	// Networks routed through a peer count as that peer: a rule that lets
	// this agent reach routing peer R also lets it reach the networks it
	// uses through R (the exit node's 0.0.0.0/0 included); R checks the
	// forwarded packets against its own rules (Routed below).
	via := routedVia(nm, self)
	for _, r := range nm.FirewallRules {
		fr := firewall.Rule{ID: r.Id, PolicyID: r.PolicyId, Direction: firewall.In, Action: firewall.Accept}
		if r.Direction == managementpb.FirewallRule_OUT {
			fr.Direction = firewall.Out
		}
		if r.Action == managementpb.FirewallRule_DROP {
			fr.Action = firewall.Drop
		}
		switch r.Protocol {
		case managementpb.FirewallRule_TCP:
			fr.Proto = firewall.TCP
		case managementpb.FirewallRule_UDP:
			fr.Proto = firewall.UDP
		case managementpb.FirewallRule_ICMP:
			fr.Proto = firewall.ICMP
		default:
			fr.Proto = firewall.All
		}
		for _, pr := range r.Ports {
			if pr.Start > 65535 || pr.End > 65535 || pr.Start == 0 {
				continue
			}
			end := pr.End
			if end == 0 {
				end = pr.Start
			}
			fr.Ports = append(fr.Ports, firewall.PortRange{Start: uint16(pr.Start), End: uint16(end)})
		}
		if len(r.Ports) > 0 && len(fr.Ports) == 0 {
			continue // only bad ranges: an empty list would mean all ports
		}
		for _, id := range r.PeerSets {
			for _, p := range sets[id] {
				fr.Peers = append(fr.Peers, p)
				fr.Peers = append(fr.Peers, via[p.Addr()]...)
			}
		}
		cfg.Rules = append(cfg.Rules, fr)
	}
	for _, r := range nm.Routes {
		if r.PeerPublicKey != self.String() {
			continue
		}
		if p, err := netip.ParsePrefix(r.Network); err == nil {
			cfg.Routed = append(cfg.Routed, p.Masked())
		}
	}
	return cfg
}

// routedVia maps each routing peer's overlay address to the networks this
// agent may reach through it.
func routedVia(nm *managementpb.NetworkMap, self keys.Public) map[netip.Addr][]netip.Prefix {
	ipOf := make(map[string]netip.Addr, len(nm.Peers))
	for _, p := range nm.Peers {
		if len(p.AllowedIps) > 0 {
			if pfx, err := netip.ParsePrefix(p.AllowedIps[0]); err == nil {
				ipOf[p.PublicKey] = pfx.Addr()
			}
		}
	}
	out := map[netip.Addr][]netip.Prefix{}
	for _, r := range nm.Routes {
		ip, ok := ipOf[r.PeerPublicKey]
		if !ok || r.PeerPublicKey == self.String() {
			continue
		}
		if n, err := netip.ParsePrefix(r.Network); err == nil {
			out[ip] = append(out[ip], n.Masked())
		}
	}
	return out
}

// applyFirewall hands the map's rules to the filter.
func (e *Engine) applyFirewall(nm *managementpb.NetworkMap) {
	if e.fw != nil {
		e.fw.Apply(firewallConfig(nm, e.pub))
	}
}

// firewallCounters fills each peer's counters in a status response.
func (e *Engine) firewallCounters(st *daemonpb.StatusResponse) {
	var stats map[netip.Addr]firewall.PeerCounters
	if e.fw != nil {
		stats = e.fw.Stats()
	}
	for _, p := range st.Peers {
		c := &daemonpb.FirewallCounters{}
		if a, err := netip.ParseAddr(p.Ip); err == nil && stats != nil {
			s := stats[a]
			c.InAllowed, c.InDropped, c.OutAllowed, c.OutDropped = s.InAllowed, s.InDropped, s.OutAllowed, s.OutDropped
		}
		if k, err := keys.ParsePublic(p.PublicKey); err == nil && e.dev != nil {
			c.Spoofed = e.dev.Spoofed(k)
		}
		p.Firewall = c
	}
}

// Trace says which rule decides a new packet from src to dst (addresses
// or peer names).
func (e *Engine) Trace(req *daemonpb.TraceRequest) (*daemonpb.TraceReply, error) {
	if e.fw == nil {
		return nil, fmt.Errorf("no firewall")
	}
	src, err := e.traceAddr(req.Src)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	dst, err := e.traceAddr(req.Dst)
	if err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	var proto firewall.Proto
	switch strings.ToLower(req.Proto) {
	case "tcp":
		proto = firewall.TCP
	case "udp":
		proto = firewall.UDP
	case "icmp":
		proto = firewall.ICMP
	case "", "all":
		proto = firewall.All
	default:
		return nil, fmt.Errorf("protocol %q: want tcp, udp, icmp or all", req.Proto)
	}
	if req.Port > 65535 {
		return nil, fmt.Errorf("port %d out of range", req.Port)
	}
	d := e.fw.Trace(src, dst, proto, uint16(req.Port))
	dir := "in"
	e.mu.Lock()
	if e.self != nil {
		if p, err := netip.ParsePrefix(e.self.Address); err == nil && p.Addr() == src {
			dir = "out"
		}
	}
	e.mu.Unlock()
	return &daemonpb.TraceReply{Allowed: d.Allowed, RuleId: d.RuleID, PolicyId: d.PolicyID, Reason: d.Reason,
		Direction: dir}, nil
}

// traceAddr accepts an address, "self" (or this agent's own name), or a
// peer's name.
func (e *Engine) traceAddr(q string) (netip.Addr, error) {
	e.mu.Lock()
	own := e.self != nil && (strings.EqualFold(q, e.Hostname()) ||
		strings.EqualFold(strings.TrimSuffix(q, "."), strings.TrimSuffix(e.self.Fqdn, ".")) ||
		strings.EqualFold(q, e.self.DnsLabel))
	e.mu.Unlock()
	if own || strings.EqualFold(q, "self") {
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.self == nil {
			return netip.Addr{}, fmt.Errorf("no overlay address yet")
		}
		p, err := netip.ParsePrefix(e.self.Address)
		return p.Addr(), err
	}
	return e.ResolvePeer(q)
}
