package engine

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"petrel/client/route"
	"petrel/internal/feature"
	"petrel/proto/daemonpb"
)

// recordLog keeps the records logged through it.
type recordLog struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *recordLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *recordLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *recordLog) WithGroup(string) slog.Handler            { return l }
func (l *recordLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r.Clone())
	return nil
}

// warnings returns "msg feature=F" (or just msg) per warn record.
func (l *recordLog) warnings() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.recs {
		if r.Level != slog.LevelWarn {
			continue
		}
		s := r.Message
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "feature" {
				s += " feature=" + a.Value.String()
			}
			return true
		})
		out = append(out, s)
	}
	return out
}

// fakeRouter is the route Manager of a platform: Apply returns err.
type fakeRouter struct {
	err   error
	calls int
}

func (f *fakeRouter) Apply(route.Config) (route.Result, error) {
	f.calls++
	return route.Result{}, f.err
}
func (f *fakeRouter) Close() error { return nil }

const notSupported = "feature not supported on this platform"

func unsupportedOf(st *daemonpb.StatusResponse) []string {
	var out []string
	for _, u := range st.Unsupported {
		out = append(out, u.Feature)
		if !strings.HasPrefix(u.Message, u.Feature+": ") || !strings.Contains(u.Message, "not supported on this platform") {
			out = append(out, "bad message "+u.Message)
		}
	}
	return out
}

func routeStates(st *daemonpb.StatusResponse) map[string]string {
	out := map[string]string{}
	for _, r := range st.Routes {
		out[r.Network] = r.State
		if r.State == route.StateFailed {
			out[r.Network] += ": " + r.Reason
		}
	}
	return out
}

// The route Manager of a platform without policy routing refuses the map's
// routes, exit node and served network: one warn line per feature, an
// entry per feature in status, the routes shown failed and the exit node
// inactive; no retry
// loop, nothing logged again while it lasts, and all of it gone (and
// logged again on return) as the need goes and comes back.
func TestUnsupportedRoutesReported(t *testing.T) {
	logs := &recordLog{}
	e := &Engine{log: slog.New(logs)}
	e.initRouting()
	fake := &fakeRouter{}
	e.rt.mgr = fake
	now := time.Now()
	pfx := netip.MustParsePrefix
	in := route.PlanInput{Self: "self", Interface: "utun4", Overlay: pfx("100.64.0.0/16"), Now: now,
		Routes: []route.MapRoute{
			{ID: "r1", NetworkID: "n1", Network: pfx("10.20.0.0/24"), Peer: "p1", Metric: 10},
			{ID: "x1", NetworkID: "n2", Network: pfx("0.0.0.0/0"), Peer: "p2", Metric: 10, AutoApply: true},
			{ID: "s1", NetworkID: "n3", Network: pfx("192.168.50.0/24"), Peer: "self", Metric: 10}},
		Peers: map[string]route.PeerState{"p1": {Name: "p1", Connected: true}, "p2": {Name: "p2", Connected: true}},
		Exit:  route.ExitPrefs{AllowLAN: true}}
	plan := route.Compute(in, route.NewSelector())
	if !plan.Config.Exit.Active || len(plan.Config.Routes) < 2 || len(plan.Config.Serve) != 1 {
		t.Fatalf("precondition: plan config %+v lacks routes, exit node or served network", plan.Config)
	}
	apply := func(cfg route.Config, host route.Host) {
		e.rt.mu.Lock()
		e.rt.plan.Config = cfg
		e.applyHostRoutes(cfg, host, now)
		e.rt.mu.Unlock()
	}
	e.rt.plan = plan

	fake.err = errors.Join(
		feature.Unsupported(feature.Routes, "1 route to install", "policy routing"),
		feature.Unsupported(feature.ExitNode, "an exit node is selected", "policy routing"),
		feature.Unsupported(feature.RoutingPeer, "this agent serves 1 network", "forwarding and masquerade"))
	apply(plan.Config, route.Host{})
	want := []string{notSupported + " feature=routes", notSupported + " feature=exit-node", notSupported + " feature=routing-peer"}
	if got := logs.warnings(); !slices.Equal(got, want) {
		t.Fatalf("warnings = %q, want %q", got, want)
	}
	st := e.Status()
	if got := unsupportedOf(st); !slices.Equal(got, []string{"exit-node", "routes", "routing-peer"}) {
		t.Errorf("status unsupported = %q, want exit-node, routes, routing-peer", got)
	}
	if len(st.Routes) != 3 {
		t.Errorf("status has %d routes, want 3", len(st.Routes))
	}
	for network, state := range routeStates(st) {
		if !strings.HasPrefix(state, route.StateFailed+": ") || !strings.Contains(state, "not supported on this platform") {
			t.Errorf("route %s: state %q, want failed as not supported", network, state)
		}
	}
	if st.ExitNode.Active || !strings.Contains(st.ExitNode.Reason, "exit-node: ") {
		t.Errorf("exit node %+v shown active or without the reason", st.ExitNode)
	}

	// Unchanged config: not applied again. Changed host: applied, not re-logged.
	apply(plan.Config, route.Host{})
	apply(plan.Config, route.Host{Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.5")}})
	if fake.calls != 2 {
		t.Errorf("Apply calls = %d, want 2 (once per distinct input, no retry loop)", fake.calls)
	}
	if got := logs.warnings(); len(got) != 3 {
		t.Errorf("warnings after repeats = %q, want the first three only", got)
	}

	// The need goes: the entries go; routes show what the plan says.
	fake.err = nil
	apply(route.Config{Interface: "utun4", Overlay: pfx("100.64.0.0/16")}, route.Host{})
	if st := e.Status(); len(st.Unsupported) != 0 || st.ExitNode.Active != plan.Exit.Active {
		t.Errorf("after the need went: unsupported %v, exit active %v", st.Unsupported, st.ExitNode.Active)
	}

	// A real failure is no platform matter: the usual warning and retry.
	fake.err = errors.New("netlink: permission denied")
	apply(plan.Config, route.Host{})
	if got := logs.warnings(); len(got) != 4 || !strings.HasPrefix(got[3], "apply routes; retrying") {
		t.Errorf("warnings = %q, want the apply-and-retry warning last", got)
	}
	if e.rt.retryAt.IsZero() || len(e.Status().Unsupported) != 0 {
		t.Errorf("real failure: retryAt %v, unsupported %v", e.rt.retryAt, e.Status().Unsupported)
	}

	// The need comes back: logged again.
	e.rt.retryAt = time.Time{}
	fake.err = feature.Unsupported(feature.Routes, "1 route to install", "policy routing")
	apply(plan.Config, route.Host{})
	if got := logs.warnings(); len(got) != 5 || got[4] != notSupported+" feature=routes" {
		t.Errorf("warnings = %q, want routes logged again", got)
	}
}

// A platform without a host DNS integration: the resolver runs, status
// lists dns-host (not a DNS error) and the log says so once; any other
// failure stays a DNS error.
func TestUnsupportedDNSHostReported(t *testing.T) {
	logs := &recordLog{}
	e := &Engine{log: slog.New(logs)}
	e.initRouting()
	e.dns.mu.Lock()
	e.hostDNSFailed(feature.Unsupported(feature.DNSHost, "dns mode auto", "pointing the host's resolver at the agent"))
	e.dns.mu.Unlock()
	st := e.Status()
	if got := unsupportedOf(st); !slices.Equal(got, []string{"dns-host"}) || st.Dns.Error != "" {
		t.Errorf("unsupported %q, dns error %q; want dns-host and no DNS error", got, st.Dns.Error)
	}
	if got := logs.warnings(); !slices.Equal(got, []string{notSupported + " feature=dns-host"}) {
		t.Errorf("warnings = %q", got)
	}

	e.dns.mu.Lock()
	e.hostDNSFailed(errors.New("resolv.conf: read-only file system"))
	e.dns.mu.Unlock()
	st = e.Status()
	if len(st.Unsupported) != 0 || !strings.Contains(st.Dns.Error, "read-only") {
		t.Errorf("unsupported %v, dns error %q; want none and the error", st.Unsupported, st.Dns.Error)
	}
}
