package engine

import (
	"sort"
	"sync"
	"testing"
	"time"

	"petrel/proto/managementpb"
)

// fakeClock runs scheduled functions when the test advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Duration
	timers []*fakeTimer
}

type fakeTimer struct {
	c       *fakeClock
	at      time.Duration
	f       func()
	stopped bool
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now + d, f: f}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves the clock and runs the functions that came due, in order.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now += d
	var due []*fakeTimer
	keep := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.stopped:
		case t.at <= c.now:
			t.stopped = true
			due = append(due, t)
		default:
			keep = append(keep, t)
		}
	}
	c.timers = keep
	c.mu.Unlock()
	sort.Slice(due, func(i, j int) bool { return due[i].at < due[j].at })
	for _, t := range due {
		t.f()
	}
}

// The answering side's hold, driven through reconcilePeers and watched
// over (fake) time: reconcilePeers creates the WireGuard peer at once,
// without endpoint; the first path stays held from WireGuard until
// keepaliveDelay has passed, then WireGuard gets it with the keepalive.
func TestAnsweringHoldThroughReconcile(t *testing.T) {
	ka, kb := pairWhereFirstAnswers(t)
	e, cleanup := engineWithDevice(t, ka)
	defer cleanup()
	un, err := newUnderlayNet("petrel-test", true)
	if err != nil {
		t.Fatal(err)
	}
	e.mux = newICEMux(e.bind.ICEConn(), un)
	defer e.mux.Close()
	clk := &fakeClock{}
	e.after = clk.AfterFunc
	e.self = &managementpb.PeerConfig{Address: "100.64.0.1/16"}
	e.reconcilePeers(&managementpb.NetworkMap{Peers: []*managementpb.RemotePeer{{
		PublicKey: kb.Public().String(), Name: "b", AllowedIps: []string{"100.64.0.9/32"}}}})
	r := e.peers[kb.Public()]
	if r == nil {
		t.Fatal("reconcilePeers did not add the peer")
	}
	defer r.conn.Close()
	defer stopKick(r)
	if st, ok, _ := e.dev.PeerStats(kb.Public()); !ok || st.Endpoint != "" {
		t.Fatalf("after reconcile: found %v, endpoint %q; want the peer without endpoint", ok, st.Endpoint)
	}
	const ep = "192.0.2.7:51820"
	if err := (peerEndpoints{e, r}).SetEndpoint(kb.Public(), ep); err != nil {
		t.Fatal(err)
	}
	for _, step := range []time.Duration{0, keepaliveDelay / 2, keepaliveDelay/2 - time.Millisecond} {
		clk.Advance(step)
		if st, _, _ := e.dev.PeerStats(kb.Public()); st.Endpoint != "" {
			t.Fatalf("path given to WireGuard %v after the first path, before keepaliveDelay (%v)", clk.now, keepaliveDelay)
		}
	}
	clk.Advance(time.Millisecond)
	st, _, _ := e.dev.PeerStats(kb.Public())
	if st.Endpoint != ep {
		t.Fatalf("at keepaliveDelay the path was not given to WireGuard: endpoint %q", st.Endpoint)
	}
	r.devMu.Lock()
	hold, ka2 := r.hold, r.keepaliveOn
	r.devMu.Unlock()
	if hold || !ka2 {
		t.Fatalf("after keepaliveDelay: hold %v keepalive %v", hold, ka2)
	}
}
