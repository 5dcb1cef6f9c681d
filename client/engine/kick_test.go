package engine

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"petrel/client/wg"
	"petrel/internal/keys"
	"petrel/proto/managementpb"
)

// Exactly one side of every pair initiates the first handshake (and gets
// the keepalive at creation); the other starts with it off.
func TestExactlyOneSideInitiates(t *testing.T) {
	for i := 0; i < 50; i++ {
		ka, kb := newKeyPair(t)
		a := &Engine{pub: ka.Public()}
		b := &Engine{pub: kb.Public()}
		ia, ib := a.initiates(kb.Public()), b.initiates(ka.Public())
		if ia == ib {
			t.Fatalf("pair %d: a initiates %v, b initiates %v", i, ia, ib)
		}
		if (a.initialKeepalive(kb.Public()) == keepalive) != ia || (b.initialKeepalive(ka.Public()) == 0) != ia {
			t.Fatalf("pair %d: keepalive does not follow the initiator", i)
		}
	}
}

// The answering side has the WireGuard peer before any path exists (so the
// initiator's first initiation is never dropped as coming from an unknown
// key) and holds its first path back from WireGuard until keepaliveDelay,
// so its own traffic cannot make it initiate and cross the initiator. The
// initiating side creates the peer only with its first endpoint.
func TestAnsweringSideHasPeerEarlyAndHoldsPath(t *testing.T) {
	ka, kb := pairWhereFirstAnswers(t)
	e, cleanup := engineWithDevice(t, ka)
	defer cleanup()
	// As reconcilePeers builds it on the answering side.
	newRemote := func() *remote {
		return &remote{hold: true, info: &managementpb.RemotePeer{PublicKey: kb.Public().String(), Name: "b", AllowedIps: []string{"100.64.0.9/32"}}}
	}
	r := newRemote()
	defer stopKick(r)
	r.devMu.Lock()
	err := e.ensureAnsweringLocked(kb.Public(), r)
	r.devMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	st, ok, err := e.dev.PeerStats(kb.Public())
	if err != nil || !ok || st.Endpoint != "" {
		t.Fatalf("answering side before any path: stats %+v found %v err %v; want the peer without endpoint", st, ok, err)
	}
	if err := (peerEndpoints{e, r}).SetEndpoint(kb.Public(), "not an endpoint"); err == nil {
		t.Fatal("a bad endpoint was accepted while held")
	}
	const ep = "192.0.2.7:51820"
	setAndWaitApplied := func(r *remote) {
		t.Helper()
		if err := (peerEndpoints{e, r}).SetEndpoint(kb.Public(), ep); err != nil {
			t.Fatal(err)
		}
		if st, ok, _ := e.dev.PeerStats(kb.Public()); !ok || st.Endpoint != "" {
			t.Fatalf("first path: peer found %v, endpoint %q; want the peer, its path held until keepaliveDelay", ok, st.Endpoint)
		}
		deadline := time.Now().Add(10 * keepaliveDelay)
		for {
			st, _, _ := e.dev.PeerStats(kb.Public())
			if st.Endpoint == ep {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("held path never applied: endpoint %q", st.Endpoint)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	setAndWaitApplied(r)

	// A path that arrives before reconcilePeers created the peer is held too.
	stopKick(r)
	if err := e.dev.RemovePeer(kb.Public()); err != nil {
		t.Fatal(err)
	}
	r2 := newRemote()
	defer stopKick(r2)
	setAndWaitApplied(r2)

	// The initiating side: no peer until the first endpoint, then at once.
	ei, cleanupI := engineWithDevice(t, kb)
	defer cleanupI()
	ri := &remote{info: &managementpb.RemotePeer{PublicKey: ka.Public().String(), Name: "a", AllowedIps: []string{"100.64.0.8/32"}}}
	defer stopKick(ri)
	if _, ok, _ := ei.dev.PeerStats(ka.Public()); ok {
		t.Fatal("initiating side has the peer before any path")
	}
	if err := (peerEndpoints{ei, ri}).SetEndpoint(ka.Public(), ep); err != nil {
		t.Fatal(err)
	}
	if st, ok, _ := ei.dev.PeerStats(ka.Public()); !ok || st.Endpoint != ep {
		t.Fatalf("initiating side after its first path: %+v found %v", st, ok)
	}
}

// pairWhereFirstAnswers returns keys a, b such that a does not initiate to b.
func pairWhereFirstAnswers(t *testing.T) (keys.Private, keys.Private) {
	t.Helper()
	for {
		ka, kb := newKeyPair(t)
		if !(&Engine{pub: ka.Public()}).initiates(kb.Public()) {
			return ka, kb
		}
	}
}

func newKeyPair(t *testing.T) (keys.Private, keys.Private) {
	t.Helper()
	var ks [2]keys.Private
	for i := range ks {
		k, err := keys.NewPrivate()
		if err != nil {
			t.Fatal(err)
		}
		ks[i] = k
	}
	return ks[0], ks[1]
}

// engineWithDevice is an Engine with just a netstack WireGuard device.
func engineWithDevice(t *testing.T, k keys.Private) (*Engine, func()) {
	t.Helper()
	bind := wg.NewBind(wg.BindConfig{})
	dev, err := wg.NewDevice(wg.DeviceConfig{
		Netstack: true, MTU: 1280, Address: netip.MustParsePrefix("100.64.0.1/16"),
		PrivateKey: k, Bind: bind,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.DiscardHandler)
	e := &Engine{pub: k.Public(), dev: dev, bind: bind, ctx: ctx, log: log, cfg: Config{Logger: log},
		peers: map[keys.Public]*remote{}}
	return e, func() { cancel(); dev.Close() }
}

func stopKick(r *remote) {
	r.devMu.Lock()
	defer r.devMu.Unlock()
	r.removed = true
	if r.kick != nil {
		r.kick.Stop()
	}
}
