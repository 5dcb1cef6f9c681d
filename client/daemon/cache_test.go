package daemon_test

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"petrel/client/daemon"
	"petrel/client/engine"
	"petrel/management"
	"petrel/proto/daemonpb"
)

// waitStatus polls the daemon until ok holds or the deadline passes.
func waitStatus(t *testing.T, cl daemonpb.DaemonClient, what string, d time.Duration, ok func(*daemonpb.StatusResponse) bool) *daemonpb.StatusResponse {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		st := status(t, cl)
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached in %v; status %+v", what, d, st)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func peerVia(st *daemonpb.StatusResponse, path string) bool {
	if len(st.Peers) != 1 || st.Peers[0].Status != "connected" {
		return false
	}
	return path == "" || st.Peers[0].Path == path
}

// ping sends echoes over the overlay through the daemon API until one is
// answered (a loaded machine may lose the first) or 20 s pass.
func ping(t *testing.T, cl daemonpb.DaemonClient, peer string) error {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := pingOnce(cl, peer)
		if err == nil || time.Now().After(deadline) {
			return err
		}
	}
}

func pingOnce(cl daemonpb.DaemonClient, peer string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := cl.Ping(ctx, &daemonpb.PingRequest{Peer: peer, Count: 1, TimeoutMs: 3000})
	if err != nil {
		return err
	}
	for {
		r, err := s.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if r.Error != "" {
			return &pingErr{r.Error}
		}
	}
}

type pingErr struct{ s string }

func (e *pingErr) Error() string { return e.s }

// Two agents restarted while the whole control plane (management, signal,
// relay: one petrel-server) is down reach each other from their map
// caches, on their previous WireGuard ports, say so in status, and resync
// when the server returns.
func TestRestartDuringFullOutageUsesCache(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	data := t.TempDir()
	srv := startServerAt(t, data, listen)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, key, err := srv.Management().CreateSetupKey(ctx, srv.Management().Accounts()[0],
		management.SetupKeyInput{Name: "t", Reusable: true})
	if err != nil {
		t.Fatal(err)
	}
	dirA, dirB := shortDir(t), shortDir(t)
	_, clA, stopA := startDaemon(t, dirA)
	_, clB, stopB := startDaemon(t, dirB)
	for _, c := range []struct {
		cl   daemonpb.DaemonClient
		name string
	}{{clA, "alpha"}, {clB, "bravo"}} {
		if err := up(c.cl, &daemonpb.UpRequest{ManagementUrl: srv.PublicURL(), SetupKey: key, Hostname: c.name, TimeoutMs: 20000}); err != nil {
			t.Fatal(err)
		}
	}
	direct := func(st *daemonpb.StatusResponse) bool { return peerVia(st, "p2p") }
	waitStatus(t, clA, "alpha sees bravo direct", 30*time.Second, direct)
	waitStatus(t, clB, "bravo sees alpha direct", 30*time.Second, direct)
	if err := ping(t, clA, "bravo"); err != nil {
		t.Fatalf("ping before the outage: %v", err)
	}
	stopA()
	stopB()
	srv.Stop()
	for _, d := range []string{dirA, dirB} {
		if fi, err := os.Stat(filepath.Join(d, engine.CacheFile)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("map cache in %s: %v %v", d, fi, err)
		}
	}

	// The whole control plane is down: both agents restart.
	_, clA, stopA = startDaemon(t, dirA)
	defer func() { stopA() }()
	_, clB, stopB = startDaemon(t, dirB)
	defer func() { stopB() }()
	cached := func(st *daemonpb.StatusResponse) bool {
		return peerVia(st, string(engine.PathCached)) && !st.ManagementConnected && st.MapFromCache
	}
	stA := waitStatus(t, clA, "alpha reaches bravo from the cache", 30*time.Second, cached)
	waitStatus(t, clB, "bravo reaches alpha from the cache", 30*time.Second, cached)
	if err := ping(t, clA, "bravo"); err != nil {
		t.Fatalf("ping during the outage: %v", err)
	}
	if stA.MapAgeSeconds <= 0 || stA.Ip == "" {
		t.Fatalf("status during the outage: map age %d, ip %q", stA.MapAgeSeconds, stA.Ip)
	}

	srv = startServerAt(t, data, listen)
	defer srv.Stop()
	back := func(st *daemonpb.StatusResponse) bool {
		return st.State == "connected" && !st.MapFromCache && st.MapAgeSeconds == 0 && peerVia(st, "")
	}
	waitStatus(t, clA, "alpha resyncs", 60*time.Second, back)
	waitStatus(t, clB, "bravo resyncs", 60*time.Second, back)
	if err := ping(t, clB, "alpha"); err != nil {
		t.Fatalf("ping after the server returned: %v", err)
	}
}

// A garbage or truncated cache is ignored: the agent logs in as usual,
// with the same key (never a silent re-registration).
func TestCorruptCacheIgnored(t *testing.T) {
	srv, key := startServer(t)
	defer srv.Stop()
	dir := shortDir(t)
	_, cl, stop := startDaemon(t, dir)
	if err := up(cl, &daemonpb.UpRequest{ManagementUrl: srv.PublicURL(), SetupKey: key, Hostname: "solo", TimeoutMs: 20000}); err != nil {
		t.Fatal(err)
	}
	pub := status(t, cl).PublicKey
	stop()
	cache := filepath.Join(dir, engine.CacheFile)
	b, err := os.ReadFile(cache)
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string][]byte{"truncated": b[:len(b)/2], "garbage": []byte("not a cache")} {
		if err := os.WriteFile(cache, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		_, cl, stop := startDaemon(t, dir)
		st := waitStatus(t, cl, name+": back up", 30*time.Second, func(st *daemonpb.StatusResponse) bool { return st.State == "connected" })
		stop()
		if st.PublicKey != pub || st.MapFromCache {
			t.Fatalf("%s: key %s (was %s), from cache %v", name, st.PublicKey, pub, st.MapFromCache)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, daemon.KeyFile)); len(b) == 0 {
			t.Fatalf("%s: key file gone", name)
		}
	}
	snap, _ := srv.Management().Snapshot(srv.Management().Accounts()[0])
	if len(snap.Peers) != 1 {
		t.Fatalf("%d peers registered, want 1", len(snap.Peers))
	}
	// Logout forgets the registration's cache too.
	_, cl, stop = startDaemon(t, dir)
	defer stop()
	waitStatus(t, cl, "up again", 30*time.Second, func(st *daemonpb.StatusResponse) bool { return st.State == "connected" })
	if _, err := cl.Logout(context.Background(), &daemonpb.LogoutRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cache); !os.IsNotExist(err) {
		t.Fatalf("map cache after logout: %v", err)
	}
}
