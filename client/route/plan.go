package route

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Planning turns the routes of the network map, the state of their routing
// peers and the user's exit-node choice into (1) the host configuration the
// Manager applies, (2) the networks each remote peer carries in WireGuard's
// allowed IPs, and (3) a status line per route for `petrel routes`. It is
// pure: the caller passes the host's networks and the peers' state in.

// Route states shown by `petrel routes`.
const (
	StateInstalled   = "installed"   // in the overlay routing table through the chosen peer
	StateStandby     = "standby"     // an HA alternative not chosen now
	StateServed      = "served"      // this agent is the routing peer
	StateRefused     = "refused"     // conflicts with the overlay or the underlay; never installed
	StateShadowed    = "shadowed"    // installed, but a local network takes (some of) its traffic
	StateFailed      = "failed"      // the kernel refused it
	StateUnavailable = "unavailable" // its routing peer is not in the map
	StateExitIdle    = "exit-idle"   // an exit node not in use
)

// MapRoute is one route of the network map, per routing peer.
type MapRoute struct {
	ID         string
	NetworkID  string
	Network    netip.Prefix
	Peer       string // routing peer public key
	Metric     int32
	Masquerade bool
	AutoApply  bool
	Sources    []netip.Prefix // own routes only: who may use it
}

// IsExit reports whether r is an exit-node route (0.0.0.0/0 or ::/0).
func (r MapRoute) IsExit() bool { return r.Network.Bits() == 0 }

// PeerState is what the engine knows of a remote peer.
type PeerState struct {
	Name      string
	Connected bool
	Direct    bool
	Latency   time.Duration
}

// ExitPrefs are the user's exit-node settings.
type ExitPrefs struct {
	Peer       string // explicitly selected exit peer (public key); "" = none
	Off        bool   // explicitly off: auto_apply routes are ignored
	AllowLAN   bool
	KillSwitch bool
}

// PlanInput is everything a plan depends on.
type PlanInput struct {
	Self      string // own public key
	Interface string // "" in netstack mode
	Overlay   netip.Prefix
	OverlayV6 bool // the overlay carries IPv6
	Routes    []MapRoute
	Peers     map[string]PeerState
	Exit      ExitPrefs
	Host      Host
	Now       time.Time
}

// RouteStatus is one route as `petrel routes` shows it.
type RouteStatus struct {
	ID        string `json:"id"`
	NetworkID string `json:"network_id"`
	Network   string `json:"network"`
	Peer      string `json:"peer"`      // routing peer public key
	PeerName  string `json:"peer_name"` // its name, when known
	Metric    int32  `json:"metric"`
	State     string `json:"state"`
	Chosen    bool   `json:"chosen"`
	Reason    string `json:"reason,omitempty"`
}

// ExitStatus is the exit node in use (or why none is).
type ExitStatus struct {
	Peer       string `json:"peer,omitempty"`
	PeerName   string `json:"peer_name,omitempty"`
	Auto       bool   `json:"auto"` // chosen through auto_apply, not by the user
	Active     bool   `json:"active"`
	Connected  bool   `json:"connected"`
	KillSwitch bool   `json:"kill_switch"`
	AllowLAN   bool   `json:"allow_lan"`
	Reason     string `json:"reason,omitempty"`
}

// Plan is the outcome of planning.
type Plan struct {
	Config  Config
	Allowed map[string][]netip.Prefix // extra allowed IPs per routing peer
	Routes  []RouteStatus
	Exit    ExitStatus
}

// Conflict reports why a network route must not be installed ("" if none).
func Conflict(network, overlay netip.Prefix, underlay []netip.Addr) string {
	if network.Bits() == 0 {
		return ""
	}
	if why := Reserved(network); why != "" {
		return why
	}
	if overlay.IsValid() && network.Overlaps(overlay) {
		return fmt.Sprintf("overlaps the overlay range %s", overlay)
	}
	for _, a := range underlay {
		if network.Contains(a) {
			return fmt.Sprintf("contains this host's underlay address %s", a)
		}
	}
	return ""
}

// shadowedBy returns a local (main table) network that takes some or all of
// network's traffic before the overlay table is consulted.
func shadowedBy(network netip.Prefix, local []netip.Prefix) (netip.Prefix, bool) {
	for _, l := range local {
		if l.Bits() > 0 && l.Overlaps(network) {
			return l, true
		}
	}
	return netip.Prefix{}, false
}

// Compute plans. sel keeps the sticky HA choices between calls.
func Compute(in PlanInput, sel *Selector) Plan {
	p := Plan{Allowed: map[string][]netip.Prefix{}}
	p.Config = Config{Interface: in.Interface, Overlay: in.Overlay}
	routes := slices.Clone(in.Routes)
	slices.SortFunc(routes, func(a, b MapRoute) int {
		return cmp.Or(cmp.Compare(a.Network.String(), b.Network.String()),
			cmp.Compare(a.NetworkID, b.NetworkID), cmp.Compare(a.ID, b.ID))
	})
	groups := map[netip.Prefix][]MapRoute{}
	var order []netip.Prefix
	var exits []MapRoute
	for _, r := range routes {
		if r.Peer == in.Self {
			p.Config.Serve = append(p.Config.Serve, Serve{Network: r.Network, Masquerade: r.Masquerade, Sources: r.Sources})
			p.Routes = append(p.Routes, in.status(r, StateServed, false, "this agent routes it"))
			continue
		}
		if r.IsExit() {
			exits = append(exits, r)
			continue
		}
		if _, ok := groups[r.Network]; !ok {
			order = append(order, r.Network)
		}
		groups[r.Network] = append(groups[r.Network], r)
	}
	for _, n := range order {
		p.planNetwork(in, sel, n, groups[n])
	}
	p.planExit(in, sel, exits)
	sel.Forget(func(n string) bool {
		pfx, err := netip.ParsePrefix(n)
		return err == nil && (len(groups[pfx]) > 0 || pfx.Bits() == 0)
	})
	return p
}

func (in PlanInput) status(r MapRoute, state string, chosen bool, reason string) RouteStatus {
	return RouteStatus{ID: r.ID, NetworkID: r.NetworkID, Network: r.Network.String(), Peer: r.Peer,
		PeerName: in.Peers[r.Peer].Name, Metric: r.Metric, State: state, Chosen: chosen, Reason: reason}
}

func (in PlanInput) candidates(rs []MapRoute) []Candidate {
	var out []Candidate
	for _, r := range rs {
		ps, ok := in.Peers[r.Peer]
		if !ok {
			continue
		}
		out = append(out, Candidate{Peer: r.Peer, Connected: ps.Connected, Direct: ps.Direct,
			Metric: r.Metric, Latency: ps.Latency})
	}
	return out
}

func (p *Plan) planNetwork(in PlanInput, sel *Selector, n netip.Prefix, rs []MapRoute) {
	if why := Conflict(n, in.Overlay, in.Host.Addrs); why != "" {
		for _, r := range rs {
			p.Routes = append(p.Routes, in.status(r, StateRefused, false, why))
		}
		return
	}
	ch := sel.Select(n.String(), in.candidates(rs), in.Now)
	state, shadow := StateInstalled, ""
	if l, ok := shadowedBy(n, in.Host.Routes); ok {
		state, shadow = StateShadowed, fmt.Sprintf("; shadowed by the local network %s", l)
	}
	for _, r := range rs {
		switch {
		case r.Peer == ch.Peer:
			p.Routes = append(p.Routes, in.status(r, state, true, ch.Reason+shadow))
		case !hasPeer(in, r.Peer):
			p.Routes = append(p.Routes, in.status(r, StateUnavailable, false, "routing peer not in the network map"))
		default:
			p.Routes = append(p.Routes, in.status(r, StateStandby, false, "HA alternative"))
		}
	}
	if ch.Peer == "" {
		return
	}
	p.Allowed[ch.Peer] = append(p.Allowed[ch.Peer], n)
	if in.Interface != "" {
		p.Config.Routes = append(p.Config.Routes, n)
	}
}

func hasPeer(in PlanInput, key string) bool { _, ok := in.Peers[key]; return ok }

// planExit picks the exit node: the user's explicit choice, else (unless
// off) an HA choice among auto_apply exit routes.
func (p *Plan) planExit(in PlanInput, sel *Selector, exits []MapRoute) {
	es := ExitStatus{KillSwitch: in.Exit.KillSwitch, AllowLAN: in.Exit.AllowLAN}
	var use []MapRoute // the routes of the exit node in use (v4 and/or v6)
	switch {
	case in.Exit.Off:
		es.Reason = "off"
	case in.Exit.Peer != "":
		es.Peer = in.Exit.Peer
		for _, r := range exits {
			if r.Peer == in.Exit.Peer {
				use = append(use, r)
			}
		}
		if len(use) == 0 {
			es.Reason = "the selected exit node is not offered by the network map"
		}
	default:
		es.Auto = true
		var auto []MapRoute
		for _, r := range exits {
			if r.AutoApply {
				auto = append(auto, r)
			}
		}
		if len(auto) == 0 {
			es.Reason = "none selected"
			break
		}
		ch := sel.Select(netip.IPv4Unspecified().String()+"/0", in.candidates(auto), in.Now)
		es.Peer, es.Reason = ch.Peer, ch.Reason
		for _, r := range auto {
			if r.Peer == ch.Peer {
				use = append(use, r)
			}
		}
	}
	ps, known := in.Peers[es.Peer]
	es.PeerName, es.Connected = ps.Name, ps.Connected
	if len(use) > 0 && known {
		es.Active = true
	} else if len(use) > 0 {
		es.Reason = "the exit node is not in the network map"
		use = nil
	}
	for _, r := range exits {
		inUse := slices.ContainsFunc(use, func(u MapRoute) bool { return u.ID == r.ID })
		if inUse {
			p.Routes = append(p.Routes, in.status(r, StateInstalled, true, "exit node in use"))
		} else {
			p.Routes = append(p.Routes, in.status(r, StateExitIdle, false, "exit node not in use"))
		}
	}
	// The kill switch holds even when no exit route can be used: traffic is
	// dropped, not leaked, while the chosen exit node is unavailable.
	holdKill := in.Exit.KillSwitch && !in.Exit.Off && (in.Exit.Peer != "" || es.Auto && es.Peer != "")
	if !es.Active && !holdKill {
		p.Exit = es
		return
	}
	p.Exit = es
	v6 := false
	for _, r := range use {
		p.Allowed[r.Peer] = append(p.Allowed[r.Peer], r.Network)
		v6 = v6 || r.Network.Addr().Is6()
	}
	if in.Interface == "" {
		return
	}
	p.Config.Routes = append(p.Config.Routes, netip.PrefixFrom(netip.IPv4Unspecified(), 0))
	if v6 && in.OverlayV6 {
		p.Config.Routes = append(p.Config.Routes, netip.PrefixFrom(netip.IPv6Unspecified(), 0))
	}
	p.Config.Exit = Exit{Active: true, AllowLAN: in.Exit.AllowLAN, KillSwitch: in.Exit.KillSwitch,
		BlockIPv6: !in.OverlayV6}
}
