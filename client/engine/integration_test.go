package engine_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"petrel/client/engine"
	"petrel/internal/keys"
	"petrel/management"
	"petrel/management/model"
	"petrel/server"
)

// mesh is a real control plane plus agents in netstack mode, in-process.
type mesh struct {
	t      *testing.T
	srv    *server.Server
	acct   string
	key    string
	agents map[string]*engine.Engine
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("PETREL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newMesh(t *testing.T) *mesh {
	t.Helper()
	srv, err := server.New(server.Config{
		DataDir:    t.TempDir(),
		Listen:     "127.0.0.1:0",
		STUNListen: "127.0.0.1:0",
		Logger:     testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	m := &mesh{t: t, srv: srv, agents: map[string]*engine.Engine{}}
	t.Cleanup(m.close)
	accts := srv.Management().Accounts()
	if len(accts) != 1 {
		t.Fatalf("want 1 account, got %d", len(accts))
	}
	m.acct = accts[0]
	_, key, err := srv.Management().CreateSetupKey(ctx, m.acct, management.SetupKeyInput{Name: "test", Reusable: true})
	if err != nil {
		t.Fatal(err)
	}
	m.key = key
	return m
}

func (m *mesh) close() {
	for _, a := range m.agents {
		a.Stop()
	}
	m.srv.Stop()
}

func (m *mesh) addAgent(name string) *engine.Engine {
	m.t.Helper()
	return m.addAgentWith(name, nil)
}

// addAgentWith starts an agent whose configuration edit changes first.
func (m *mesh) addAgentWith(name string, edit func(*engine.Config)) *engine.Engine {
	m.t.Helper()
	k, err := keys.NewPrivate()
	if err != nil {
		m.t.Fatal(err)
	}
	cfg := engine.Config{
		ManagementURL: m.srv.PublicURL(),
		SetupKey:      m.key,
		Hostname:      name,
		Key:           k,
		Netstack:      true,
		SOCKS5Addr:    "127.0.0.1:0",
		ICELoopback:   true,
		Logger:        testLogger(m.t).With("agent", name),
	}
	if edit != nil {
		edit(&cfg)
	}
	e, err := engine.New(cfg)
	if err != nil {
		m.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Start(ctx); err != nil {
		m.t.Fatalf("start agent %s: %v", name, err)
	}
	m.agents[name] = e
	return e
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last state: %s", what, last)
}

// pathsAre reports whether agent a sees exactly the named peers, all
// connected over path.
func pathsAre(a *engine.Engine, path string, peers ...string) (bool, string) {
	st := a.Status()
	if len(st.Peers) != len(peers) {
		return false, fmt.Sprintf("%d peers, want %d", len(st.Peers), len(peers))
	}
	desc := ""
	ok := true
	for _, p := range st.Peers {
		desc += fmt.Sprintf("[%s %s %s %s] ", p.Name, p.Status, p.Path, p.RelayReason)
		if p.Status != "connected" || p.Path != path {
			ok = false
		}
	}
	return ok, desc
}

func overlayIP(t *testing.T, a *engine.Engine) netip.Addr {
	p, err := netip.ParsePrefix(a.Status().Ip)
	if err != nil {
		t.Fatalf("agent address %q: %v", a.Status().Ip, err)
	}
	return p.Addr()
}

// checkPing pings dst from src over the overlay.
func checkPing(t *testing.T, src, dst *engine.Engine) string {
	t.Helper()
	ip := overlayIP(t, dst)
	var lastErr error
	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, path, err := src.Ping(ctx, ip)
		cancel()
		if err == nil {
			return path
		}
		lastErr = err
	}
	t.Fatalf("ping %s: %v", ip, lastErr)
	return ""
}

// checkTCP sends 256 KiB from src to a listener on dst over the overlay.
func checkTCP(t *testing.T, src, dst *engine.Engine, port int) {
	t.Helper()
	ip := overlayIP(t, dst)
	ln, err := dst.Netstack().ListenTCP(&net.TCPAddr{IP: ip.AsSlice(), Port: port})
	if err != nil {
		t.Fatalf("listen on overlay: %v", err)
	}
	defer ln.Close()
	const size = 256 << 10
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		got <- n
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := src.Netstack().DialContext(ctx, "tcp", netip.AddrPortFrom(ip, uint16(port)).String())
	if err != nil {
		t.Fatalf("dial over overlay: %v", err)
	}
	buf := make([]byte, size)
	if _, err := c.Write(buf); err != nil {
		t.Fatalf("write over overlay: %v", err)
	}
	c.Close()
	select {
	case n := <-got:
		if n != size {
			t.Fatalf("received %d bytes, want %d", n, size)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("TCP transfer timed out")
	}
}

func TestMeshDirectRelayFallbackAndMembership(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	m := newMesh(t)
	a, b, c := m.addAgent("alpha"), m.addAgent("bravo"), m.addAgent("charlie")
	all := map[string]*engine.Engine{"alpha": a, "bravo": b, "charlie": c}
	for name, e := range all {
		var others []string
		for n := range all {
			if n != name {
				others = append(others, n)
			}
		}
		waitFor(t, name+" p2p to all", 60*time.Second, func() (bool, string) { return pathsAre(e, "p2p", others...) })
	}
	port := 9000
	for sn, s := range all {
		for dn, d := range all {
			if sn == dn {
				continue
			}
			if path := checkPing(t, s, d); path != "p2p" {
				t.Errorf("ping %s->%s answered via %s, want p2p", sn, dn, path)
			}
			port++
			checkTCP(t, s, d, port)
		}
	}

	// Block direct UDP between alpha and bravo: they fall back to the relay.
	aPort, bPort := a.LocalPort(), b.LocalPort()
	a.SetBlockDirect(func(ap netip.AddrPort) bool { return int(ap.Port()) == bPort })
	b.SetBlockDirect(func(ap netip.AddrPort) bool { return int(ap.Port()) == aPort })
	waitFor(t, "alpha->bravo relayed", 60*time.Second, func() (bool, string) {
		return peerPath(a, "bravo") == "relay", a.Status().String()
	})
	waitFor(t, "bravo->alpha relayed", 60*time.Second, func() (bool, string) {
		return peerPath(b, "alpha") == "relay", b.Status().String()
	})
	if path := checkPing(t, a, b); path != "relay" {
		t.Errorf("ping while blocked answered via %s, want relay", path)
	}
	checkTCP(t, a, b, 9100)
	// The engine's overlay probe (about every 5 s per peer) measures the
	// relayed path too.
	for _, side := range []struct {
		e    *engine.Engine
		peer string
	}{{a, "bravo"}, {b, "alpha"}} {
		waitFor(t, side.peer+" relayed with latency", 90*time.Second, func() (bool, string) {
			return relayedLatency(side.e, side.peer) > 0, side.e.Status().String()
		})
	}

	// Unblock: back to p2p.
	a.SetBlockDirect(nil)
	b.SetBlockDirect(nil)
	waitFor(t, "alpha->bravo p2p again", 90*time.Second, func() (bool, string) {
		return peerPath(a, "bravo") == "p2p" && peerPath(b, "alpha") == "p2p", a.Status().String()
	})
	checkTCP(t, b, a, 9101)

	// The admin removes charlie: the others drop it.
	snap, err := m.srv.Management().Snapshot(m.acct)
	if err != nil {
		t.Fatal(err)
	}
	var charlieID string
	for id, p := range snap.Peers {
		if p.Name == "charlie" {
			charlieID = id
		}
	}
	if err := m.srv.Management().Delete(context.Background(), m.acct, model.KindPeer, charlieID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "charlie needs login", 30*time.Second, func() (bool, string) {
		st := c.Status()
		return st.State == "needs-login" && len(st.Peers) == 0, st.String()
	})
	for _, e := range []*engine.Engine{a, b} {
		waitFor(t, "charlie removed", 30*time.Second, func() (bool, string) {
			return peerPath(e, "charlie") == "", e.Status().String()
		})
	}

	// A new peer joins and is reachable by all without restarts.
	d := m.addAgent("delta")
	for _, e := range []*engine.Engine{a, b} {
		waitFor(t, "delta reachable", 60*time.Second, func() (bool, string) {
			return peerPath(e, "delta") == "p2p", e.Status().String()
		})
		checkPing(t, e, d)
		checkPing(t, d, e)
	}
}

func peerPath(e *engine.Engine, name string) string {
	for _, p := range e.Status().Peers {
		if p.Name == name && p.Status == "connected" {
			return p.Path
		}
		if p.Name == name {
			return "connecting:" + p.Path
		}
	}
	return ""
}

// relayedLatency is the latency agent e shows for a connected, relayed
// peer (0 otherwise).
func relayedLatency(e *engine.Engine, name string) float64 {
	for _, p := range e.Status().Peers {
		if p.Name == name && p.Status == "connected" && p.Path == "relay" {
			return p.LatencyMs
		}
	}
	return 0
}
