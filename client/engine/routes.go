package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"petrel/client/firewall"
	"petrel/client/peer"
	"petrel/client/route"
	"petrel/internal/feature"
	"petrel/internal/keys"
	"petrel/proto/daemonpb"
	"petrel/proto/managementpb"
)

// Routes and exit nodes. The engine only feeds client/route: on every map
// change, every routeTick and every exit-node change it computes a plan
// (route.Compute: HA choice per network, the exit node, conflicts) from the
// map, the peers' state and the user's exit-node settings, gives each
// remote peer the networks it carries as WireGuard allowed IPs, and hands
// the host part to the route Manager (TUN mode).
//
// Liveness of routing peers: a WireGuard handshake stays "fresh" for
// minutes after a peer dies, so the peers that route something are pinged
// over the overlay every routeTick; healthFails misses in a row mark one
// down until a ping answers again. That drives HA failover.

const (
	applyRetry  = 30 * time.Second // after an Apply error or a route the kernel refused
	routeTick   = time.Second
	healthWait  = time.Second // per ping
	healthFails = 3
)

// ExitPrefs are the saved exit-node settings (client/daemon persists them).
type ExitPrefs = route.ExitPrefs

// hostRouter is the host side of routes: a *route.Manager (off Linux its
// Apply returns *feature.UnsupportedError for what it cannot install).
type hostRouter interface {
	Apply(route.Config) (route.Result, error)
	Close() error
}

type routing struct {
	mgr hostRouter // nil in netstack mode

	mu      sync.Mutex // serialises planning and Manager.Apply
	sel     *route.Selector
	prefs   route.ExitPrefs
	plan    route.Plan
	applied *route.Config // last config the Manager accepted
	host    route.Host    // host networks at that Apply (LAN rules depend on them)
	failed  map[netip.Prefix]error
	retryAt time.Time // no Apply before this after a failure
	planned bool      // a plan from a network map exists
	health  map[keys.Public]*health
}

type health struct {
	fails int
	busy  bool
}

func (e *Engine) initRouting() {
	e.rt = &routing{sel: route.NewSelector(), prefs: e.cfg.Exit, health: map[keys.Public]*health{}}
	if !e.cfg.Netstack {
		e.rt.mgr = route.New(e.cfg.Logger, e.cfg.Journal)
	}
}

// routeLoop replans every routeTick (peer state changes) and probes the
// liveness of routing peers.
func (e *Engine) routeLoop() {
	defer e.probeWG.Done()
	t := time.NewTicker(routeTick)
	defer t.Stop()
	var probes sync.WaitGroup
	defer probes.Wait()
	var lastEndpoints time.Time
	for {
		select {
		case <-e.ctx.Done():
			return
		case now := <-t.C:
			if now.Sub(lastEndpoints) >= endpointTick {
				lastEndpoints = now
				e.noteEndpoints() // the map cache's working endpoints (cache.go)
			}
		}
		e.probeRouters(&probes)
		e.replan()
	}
}

// probeRouters pings every routing peer of the map once (at most one ping
// per peer in flight).
func (e *Engine) probeRouters(wg *sync.WaitGroup) {
	type target struct {
		k  keys.Public
		ip netip.Addr
	}
	var ts []target
	e.mu.Lock()
	if e.nm != nil {
		for _, r := range e.nm.Routes {
			k, err := keys.ParsePublic(r.PeerPublicKey)
			if err != nil || k == e.pub {
				continue
			}
			if rem, ok := e.peers[k]; ok {
				if ip, ok := overlayAddr(rem); ok && !slices.ContainsFunc(ts, func(t target) bool { return t.k == k }) &&
					e.probeAllowed(ip) {
					ts = append(ts, target{k, ip})
				}
			}
		}
	}
	e.mu.Unlock()
	e.rt.mu.Lock()
	for k := range e.rt.health {
		if !slices.ContainsFunc(ts, func(t target) bool { return t.k == k }) {
			delete(e.rt.health, k)
		}
	}
	var start []target
	for _, t := range ts {
		h := e.rt.health[t.k]
		if h == nil {
			h = &health{}
			e.rt.health[t.k] = h
		}
		if !h.busy {
			h.busy = true
			start = append(start, t)
		}
	}
	e.rt.mu.Unlock()
	for _, t := range start {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(e.ctx, healthWait)
			_, err := e.dev.Ping(ctx, t.ip)
			cancel()
			e.rt.mu.Lock()
			defer e.rt.mu.Unlock()
			h := e.rt.health[t.k]
			if h == nil {
				return
			}
			h.busy = false
			switch {
			case err == nil:
				h.fails = 0
			case e.ctx.Err() == nil:
				h.fails++
			}
		}()
	}
}

// probeAllowed reports whether the access policy lets this agent ping ip
// (Engine.mu held). Where it does not, the liveness ping would always
// fail: the peer's health is then unknown and HA relies on the path state.
func (e *Engine) probeAllowed(ip netip.Addr) bool {
	if e.fw == nil || e.self == nil {
		return true
	}
	self, err := netip.ParsePrefix(e.self.Address)
	if err != nil {
		return true
	}
	return e.fw.Trace(self.Addr(), ip, firewall.ICMP, 0).Allowed
}

// alive reports whether a routing peer answered lately (rt.mu held).
func (rt *routing) alive(k keys.Public) bool {
	h := rt.health[k]
	return h == nil || h.fails < healthFails
}

// replan computes the plan and applies it: allowed IPs, then the host.
func (e *Engine) replan() {
	if e.rt == nil || !e.running() || e.dev == nil {
		return
	}
	st := e.coreStatus() // peers' state, outside e.rt.mu
	e.mu.Lock()
	nm, self := e.nm, e.self
	e.mu.Unlock()
	if self == nil {
		return
	}
	overlay, _ := netip.ParsePrefix(self.Address)
	in := route.PlanInput{Self: e.pub.String(), Overlay: overlay.Masked(), Now: time.Now(),
		Peers: map[string]route.PeerState{}}
	if !e.cfg.Netstack {
		in.Interface = e.cfg.InterfaceName
		host, err := route.HostNetworks(e.cfg.InterfaceName)
		if err != nil {
			e.log.Warn("read host networks", "err", err)
		}
		in.Host = host
	}
	if nm != nil {
		in.Routes = mapRoutes(nm)
	}
	e.rt.mu.Lock()
	defer e.rt.mu.Unlock()
	for _, p := range st.Peers {
		k, err := keys.ParsePublic(p.PublicKey)
		if err != nil {
			continue
		}
		in.Peers[p.PublicKey] = route.PeerState{Name: p.Name,
			Connected: p.Status == "connected" && e.rt.alive(k),
			Direct:    p.Path == string(peer.PathDirect),
			Latency:   time.Duration(p.LatencyMs * float64(time.Millisecond))}
	}
	in.Exit = e.rt.prefs
	plan := route.Compute(in, e.rt.sel)
	e.rt.plan = plan
	e.rt.planned = e.rt.planned || nm != nil
	e.setRouteAllowed(plan.Allowed)
	e.applyHostRoutes(plan.Config, in.Host, in.Now)
}

// applyHostRoutes gives the route Manager the plan's host part unless it
// has it already (rt.mu held). What the platform cannot install is
// reported once (unsupported.go), not retried.
func (e *Engine) applyHostRoutes(cfg route.Config, host route.Host, now time.Time) {
	if e.rt.mgr == nil {
		return
	}
	same := e.rt.applied != nil && sameConfig(*e.rt.applied, cfg) && sameHost(e.rt.host, host)
	if same && len(e.rt.failed) == 0 || now.Before(e.rt.retryAt) {
		return
	}
	res, err := e.rt.mgr.Apply(cfg)
	us, err := feature.Split(err)
	e.setUnsupported(srcRoutes, us)
	if err != nil {
		e.log.Warn("apply routes; retrying in "+applyRetry.String(), "err", err)
		e.rt.applied, e.rt.retryAt = nil, now.Add(applyRetry)
		return
	}
	e.rt.retryAt = time.Time{}
	for _, d := range res.Degraded {
		e.log.Warn("routes installed without a safeguard", "note", d)
	}
	if len(res.Failed) > 0 {
		e.rt.retryAt = now.Add(applyRetry)
	}
	for p, ferr := range res.Failed {
		if e.rt.failed[p] == nil {
			e.log.Warn("route refused by the kernel", "network", p, "err", ferr)
		}
	}
	e.rt.applied, e.rt.failed, e.rt.host = &cfg, res.Failed, host
}

func sameHost(a, b route.Host) bool {
	return slices.Equal(a.Addrs, b.Addrs) && slices.Equal(a.Routes, b.Routes)
}

// setRouteAllowed gives each remote its routed networks (rt.mu held; takes
// devMu then e.mu per remote). Peers that lose a network are updated before
// peers that gain one, so that a prefix moving from one peer to another is
// never assigned twice: WireGuard's routing trie has one owner per prefix.
func (e *Engine) setRouteAllowed(extra map[string][]netip.Prefix) {
	e.mu.Lock()
	rems := make(map[keys.Public]*remote, len(e.peers))
	for k, r := range e.peers {
		rems[k] = r
	}
	e.mu.Unlock()
	for _, losing := range []bool{true, false} {
		for k, r := range rems {
			want := extra[k.String()]
			r.devMu.Lock()
			loses := slices.ContainsFunc(r.routed, func(p netip.Prefix) bool { return !slices.Contains(want, p) })
			if loses == losing && !slices.Equal(r.routed, want) {
				e.log.Debug("routed networks", "peer", k.Short(), "from", r.routed, "to", want)
				old := r.routed
				r.routed = slices.Clone(want)
				if r.configured && !r.removed {
					if err := e.dev.UpsertPeer(k, e.allowedFor(r), "", r.keepalive()); err != nil {
						e.log.Warn("set routed networks", "peer", k.Short(), "err", err)
						r.routed = old // retried on the next plan
					}
				}
			}
			r.devMu.Unlock()
		}
	}
}

// allowedFor is a remote's WireGuard allowed IPs: its overlay addresses
// from the map plus the networks this agent routes through it now
// (r.devMu held). Networks the server lists for routing peers are not
// taken from the map: only the HA choice decides who carries a network.
func (e *Engine) allowedFor(r *remote) []netip.Prefix {
	info := e.infoOf(r)
	e.mu.Lock()
	var overlay netip.Prefix
	if e.self != nil {
		overlay, _ = netip.ParsePrefix(e.self.Address)
	}
	e.mu.Unlock()
	var out []netip.Prefix
	for _, p := range mapAllowedIPs(info) {
		if !overlay.IsValid() || overlay.Masked().Contains(p.Addr()) && p.Bits() >= overlay.Bits() {
			out = append(out, p)
		}
	}
	return append(out, r.routed...)
}

func (r *remote) keepalive() time.Duration {
	if r.keepaliveOn {
		return keepalive
	}
	return 0
}

func mapRoutes(nm *managementpb.NetworkMap) []route.MapRoute {
	sets := map[string][]string{}
	for _, s := range nm.PeerSets {
		sets[s.Id] = s.Ips
	}
	out := make([]route.MapRoute, 0, len(nm.Routes))
	for _, r := range nm.Routes {
		n, err := netip.ParsePrefix(r.Network)
		if err != nil {
			continue
		}
		mr := route.MapRoute{ID: r.Id, NetworkID: r.NetworkId, Network: n.Masked(), Peer: r.PeerPublicKey,
			Metric: r.Metric, Masquerade: r.Masquerade, AutoApply: r.AutoApply}
		for _, id := range r.SourceSets {
			for _, ip := range sets[id] {
				if a, err := netip.ParseAddr(ip); err == nil {
					mr.Sources = append(mr.Sources, netip.PrefixFrom(a, a.BitLen()))
				}
			}
		}
		out = append(out, mr)
	}
	return out
}

func sameConfig(a, b route.Config) bool {
	return a.Interface == b.Interface && a.Overlay == b.Overlay && a.Exit == b.Exit &&
		slices.Equal(a.Routes, b.Routes) &&
		slices.EqualFunc(a.Serve, b.Serve, func(x, y route.Serve) bool {
			return x.Network == y.Network && x.Masquerade == y.Masquerade && slices.Equal(x.Sources, y.Sources)
		})
}

// routeStatus fills the status response's routes and exit node. What the
// platform could not install shows as failed (the exit node as inactive),
// with the unsupported feature as the reason.
func (e *Engine) routeStatus(st *daemonpb.StatusResponse) {
	if e.rt == nil {
		return
	}
	noRoutes, noExit, noServe := e.unsupported(feature.Routes), e.unsupported(feature.ExitNode), e.unsupported(feature.RoutingPeer)
	e.rt.mu.Lock()
	defer e.rt.mu.Unlock()
	for _, r := range e.rt.plan.Routes {
		rs := &daemonpb.RouteStatus{Id: r.ID, NetworkId: r.NetworkID, Network: r.Network, Peer: r.Peer,
			PeerName: r.PeerName, Metric: r.Metric, State: r.State, Chosen: r.Chosen, Reason: r.Reason}
		n, err := netip.ParsePrefix(r.Network)
		installed := r.State == route.StateInstalled || r.State == route.StateShadowed
		switch {
		case installed && err == nil && n.Bits() == 0 && noExit != nil:
			rs.State, rs.Reason = route.StateFailed, noExit.Error()
		case installed && err == nil && n.Bits() > 0 && noRoutes != nil:
			rs.State, rs.Reason = route.StateFailed, noRoutes.Error()
		case r.State == route.StateServed && noServe != nil:
			rs.State, rs.Reason = route.StateFailed, noServe.Error()
		case installed && err == nil && e.rt.failed[n] != nil:
			rs.State, rs.Reason = route.StateFailed, e.rt.failed[n].Error()
		}
		st.Routes = append(st.Routes, rs)
	}
	x := e.rt.plan.Exit
	st.ExitNode = &daemonpb.ExitNodeStatus{Peer: x.Peer, PeerName: x.PeerName, Auto: x.Auto, Active: x.Active,
		Connected: x.Connected, KillSwitch: x.KillSwitch, AllowLan: x.AllowLAN, Reason: x.Reason}
	if x.Active && noExit != nil {
		st.ExitNode.Active, st.ExitNode.Reason = false, noExit.Error()
	}
}

// ErrNoSuchExitNode is returned by SetExitNode for a peer that offers no exit route.
var ErrNoSuchExitNode = errors.New("no such exit node")

// SetExitNode changes the exit-node settings and replans at once. req.Peer
// names the peer (name, FQDN, overlay IP or public key), which must offer
// an exit route in the current map; with neither Peer, Off nor Auto the
// selection is kept and only the options given change. It returns the new
// settings to persist.
func (e *Engine) SetExitNode(req *daemonpb.SetExitNodeRequest) (ExitPrefs, error) {
	e.rt.mu.Lock()
	prefs := e.rt.prefs
	e.rt.mu.Unlock()
	switch {
	case req.Off:
		prefs.Peer, prefs.Off = "", true
	case req.Auto:
		prefs.Peer, prefs.Off = "", false
	case req.Peer != "":
		k, err := e.exitPeer(req.Peer)
		if err != nil {
			return prefs, err
		}
		prefs.Peer, prefs.Off = k, false
	}
	if req.AllowLan != nil {
		prefs.AllowLAN = *req.AllowLan
	}
	if req.KillSwitch != nil {
		prefs.KillSwitch = *req.KillSwitch
	}
	e.rt.mu.Lock()
	e.rt.prefs = prefs
	e.rt.mu.Unlock()
	e.replan()
	return prefs, nil
}

// exitPeer resolves q to the public key of a peer that offers an exit route.
func (e *Engine) exitPeer(q string) (string, error) {
	e.mu.Lock()
	var offered []string
	if e.nm != nil {
		for _, r := range e.nm.Routes {
			if n, err := netip.ParsePrefix(r.Network); err == nil && n.Bits() == 0 && r.PeerPublicKey != e.pub.String() {
				offered = append(offered, r.PeerPublicKey)
			}
		}
	}
	e.mu.Unlock()
	key := q
	if _, err := keys.ParsePublic(q); err != nil {
		ip, err := e.ResolvePeer(q)
		if err != nil {
			return "", fmt.Errorf("%w: %v", ErrNoSuchExitNode, err)
		}
		key = ""
		e.mu.Lock()
		for k, r := range e.peers {
			if a, ok := overlayAddr(r); ok && a == ip {
				key = k.String()
			}
		}
		e.mu.Unlock()
	}
	if key == "" || !slices.Contains(offered, key) {
		return "", fmt.Errorf("%w: %s does not offer an exit route (see `petrel exit-node list`)", ErrNoSuchExitNode, q)
	}
	return key, nil
}

// outsideOverlay reports whether the SOCKS5 proxy (netstack mode) reaches
// dst from the host: no overlay address, routed network or exit node
// covers it, and no kill switch holds internet traffic back. Host-local
// destinations (loopback, unspecified, link-local, multicast) are never
// dialled from the host: the proxy must not open the daemon's own view of
// the host to its clients.
func (e *Engine) outsideOverlay(dst netip.Addr) bool {
	if dst.IsLoopback() || dst.IsUnspecified() || dst.IsLinkLocalUnicast() || dst.IsMulticast() ||
		dst.IsLinkLocalMulticast() || dst.IsInterfaceLocalMulticast() {
		return false
	}
	e.mu.Lock()
	var overlay netip.Prefix
	if e.self != nil {
		overlay, _ = netip.ParsePrefix(e.self.Address)
	}
	e.mu.Unlock()
	if overlay.Masked().Contains(dst) {
		return false
	}
	e.rt.mu.Lock()
	defer e.rt.mu.Unlock()
	if !e.rt.planned && e.rt.prefs.KillSwitch && !e.rt.prefs.Off {
		return false // no map yet: the saved kill switch holds
	}
	for _, nets := range e.rt.plan.Allowed {
		for _, n := range nets {
			if n.Contains(dst) {
				return false
			}
		}
	}
	x := e.rt.plan.Exit
	return !(x.Active || x.KillSwitch && x.Peer != "")
}

// AllowedIPs returns each WireGuard peer's allowed IPs as the device has
// them (diagnostics and tests).
func (e *Engine) AllowedIPs() (map[keys.Public][]netip.Prefix, error) {
	if e.dev == nil {
		return nil, errors.New("no device")
	}
	st, err := e.dev.Stats()
	if err != nil {
		return nil, err
	}
	out := make(map[keys.Public][]netip.Prefix, len(st))
	for k, s := range st {
		out[k] = s.AllowedIPs
	}
	return out, nil
}
