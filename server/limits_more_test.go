package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"

	"petrel/client/mgmt"
	"petrel/internal/keys"
	"petrel/management"
	"petrel/management/model"
	"petrel/proto/managementpb"
	"petrel/server/internal/split"
)

// dialFrom opens a TCP connection to addr from the loopback address src
// (127.0.0.x), closed at cleanup.
func dialFrom(t testing.TB, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dripper writes one byte of s every interval (s repeated) until stopped
// or a write fails.
func dripper(c net.Conn, s string, interval time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-tick.C:
				if _, err := c.Write([]byte{s[i%len(s)]}); err != nil {
					return
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// A slowloris client that sends its request headers one byte at a time,
// forever, loses its connection after readHeader (http.Server's
// ReadHeaderTimeout): the request deadlines only start once the headers
// are in.
func TestSlowlorisHeadersCut(t *testing.T) {
	cfg := loopbackConfig(t, t.TempDir())
	cfg.limits = limits{readHeader: time.Second}
	srv := start(t, cfg)
	c := dialFrom(t, "127.0.0.1", srv.Addr().String())
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	stop := dripper(c, "abcdefgh", 50*time.Millisecond)
	defer stop()
	start := time.Now()
	closedWithin(t, c, 10*time.Second)
	t.Logf("slowloris connection closed after %v", time.Since(start).Round(time.Millisecond))
}

// A keep-alive HTTP/1 connection that sits idle after its request is
// closed after httpIdle (http.Server's IdleTimeout).
func TestIdleHTTP1KeepAliveClosed(t *testing.T) {
	cfg := loopbackConfig(t, t.TempDir())
	cfg.limits = limits{httpIdle: time.Second}
	srv := start(t, cfg)
	c := dialFrom(t, "127.0.0.1", srv.Addr().String())
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(deadline))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Close || string(body) != "ok\n" {
		t.Fatalf("healthz: %d close=%v %q", resp.StatusCode, resp.Close, body)
	}
	// The connection stays open for keep-alive, then idles out.
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("idle keep-alive connection still open after 10 s")
	}
	if n != 0 {
		t.Errorf("%d unexpected bytes on the idle connection", n)
	}
	t.Logf("idle keep-alive connection closed after %v", time.Since(start).Round(time.Millisecond))
}

// A client pinging far more often than minClientPing is sent GOAWAY
// ENHANCE_YOUR_CALM "too_many_pings" and cut (gRPC's keepalive
// enforcement policy), even with no stream open.
func TestPingFloodGoAway(t *testing.T) {
	cfg := loopbackConfig(t, t.TempDir()) // default limits: minClientPing 10 s, idle 2 min
	srv := start(t, cfg)
	c, fr := h2Client(t, srv.Addr().String())
	var wmu sync.Mutex
	write := func(f func() error) error { wmu.Lock(); defer wmu.Unlock(); return f() }
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := uint64(0); ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
				var data [8]byte
				data[7] = byte(i)
				if write(func() error { return fr.WritePing(false, data) }) != nil {
					return
				}
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("no GOAWAY after 5 s of pings every 10 ms")
			}
			t.Fatalf("connection closed without GOAWAY too_many_pings: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = write(fr.WriteSettingsAck)
			}
		case *http2.GoAwayFrame:
			if f.ErrCode != http2.ErrCodeEnhanceYourCalm || string(f.DebugData()) != "too_many_pings" {
				t.Fatalf("GOAWAY %v %q, want ENHANCE_YOUR_CALM too_many_pings", f.ErrCode, f.DebugData())
			}
			return
		}
	}
}

// A connection that never shows its protocol is closed after
// split.SniffTimeout: one that sends nothing, and one that stops in the
// middle of the HTTP/2 preface.
func TestSilentConnectionShed(t *testing.T) {
	cfg := loopbackConfig(t, t.TempDir())
	srv := start(t, cfg)
	addr := srv.Addr().String()
	silent := dialFrom(t, "127.0.0.1", addr)
	partial := dialFrom(t, "127.0.0.1", addr)
	if _, err := io.WriteString(partial, http2.ClientPreface[:10]); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	end := start.Add(split.SniffTimeout + 5*time.Second)
	for name, c := range map[string]net.Conn{"silent": silent, "partial preface": partial} {
		_ = c.SetReadDeadline(end)
		_, err := io.Copy(io.Discard, c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("%s connection still open after %v", name, time.Since(start).Round(time.Second))
		}
	}
	t.Logf("unsniffable connections closed after %v", time.Since(start).Round(time.Millisecond))
}

// loginFrom registers (or re-logs in) key over gRPC from the loopback
// address src; the client is closed at cleanup.
func loginFrom(ctx context.Context, t testing.TB, src, url, setupKey, hostname string, key keys.Private) (*mgmt.Client, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	mc, err := mgmt.Dial(ctx, url, grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", a)
	}))
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { mc.Close() })
	_, err = mc.Login(ctx, key, &managementpb.LoginRequest{SetupKey: setupKey, Hostname: hostname})
	return mc, err
}

// While a flood of silent and half-open connections from several sources
// (more than MaxConnsPerSource each) is refused and shed, an agent's
// established Sync stream still receives deltas, a new agent from a fresh
// source can log in, and once the flood is shed its sources are served
// again.
func TestSyncSurvivesConnectionFlood(t *testing.T) {
	const maxPerSource = 4
	cfg := loopbackConfig(t, t.TempDir())
	cfg.MaxConnsPerSource = maxPerSource
	cfg.limits = limits{pingTime: 500 * time.Millisecond, pingTimeout: 500 * time.Millisecond}
	srv := start(t, cfg)
	ctx := testCtx(t)
	addr, url := srv.Addr().String(), "http://"+srv.Addr().String()
	svc := srv.Management()
	acct := svc.Accounts()[0]
	_, setupKey, err := svc.CreateSetupKey(ctx, acct, management.SetupKeyInput{Name: "t", Reusable: true})
	if err != nil {
		t.Fatal(err)
	}

	// The established agent (from 127.0.0.1) and a second peer it sees.
	priv, _ := keys.NewPrivate()
	mc, err := loginFrom(ctx, t, "127.0.0.1", url, setupKey, "agent", priv)
	if err != nil {
		t.Fatalf("agent login: %v", err)
	}
	other, _ := keys.NewPrivate()
	if _, err := svc.Login(ctx, other.Public(), &managementpb.LoginRequest{SetupKey: setupKey, Hostname: "other"}); err != nil {
		t.Fatal(err)
	}
	updates := make(chan *managementpb.SyncResponse, 64)
	syncCtx, syncCancel := context.WithCancel(ctx)
	syncDone := make(chan error, 1)
	go func() {
		syncDone <- mc.Sync(syncCtx, priv, &managementpb.SyncRequest{}, func(r *managementpb.SyncResponse) error {
			select {
			case updates <- r:
			default:
			}
			return nil
		})
	}()
	defer func() { syncCancel(); <-syncDone }()
	next := func(what string) *managementpb.SyncResponse {
		t.Helper()
		select {
		case r := <-updates:
			return r
		case err := <-syncDone:
			syncDone <- err
			t.Fatalf("sync stream ended while waiting for %s: %v", what, err)
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s on the sync stream within 5 s", what)
		}
		return nil
	}
	if r := next("full map"); r.GetFull() == nil || len(r.GetFull().GetPeers()) == 0 {
		t.Fatalf("first sync message: %v", r)
	}

	// The flood: maxPerSource+2 connections from each source, alternately
	// silent and HTTP/2 handshaken then silent (answering no ping);
	// 127.0.0.1 also carries the agent's connection.
	sources := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"}
	var flood []net.Conn
	for _, src := range sources {
		for i := range maxPerSource + 2 {
			c := dialFrom(t, src, addr)
			if i%2 == 1 {
				// Errors are expected: the connections over the cap
				// may already be closed.
				if _, err := io.WriteString(c, http2.ClientPreface); err == nil {
					_ = http2.NewFramer(c, c).WriteSettings()
				}
			}
			flood = append(flood, c)
		}
	}
	floodAt := time.Now()
	// Every flooding source is at its cap: one more connection is closed
	// on accept.
	for _, src := range sources[1:] {
		closedWithin(t, dialFrom(t, src, addr), 3*time.Second)
	}

	// During the flood: an admin change reaches the established stream,
	// and an agent from a fresh source logs in.
	snap, err := svc.Snapshot(acct)
	if err != nil {
		t.Fatal(err)
	}
	var def *model.Policy
	for _, p := range snap.Policies {
		if p.Name == "Default" {
			cp := *p
			def = &cp
		}
	}
	if def == nil {
		t.Fatal("no Default policy")
	}
	def.Enabled = false
	if _, err := svc.Put(ctx, acct, def); err != nil {
		t.Fatal(err)
	}
	if r := next("delta for the policy change"); r.GetDelta() == nil {
		t.Fatalf("sync message after the policy change: %v", r)
	}
	fresh, _ := keys.NewPrivate()
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err = loginFrom(lctx, t, "127.0.0.9", url, setupKey, "fresh", fresh)
	cancel()
	if err != nil {
		t.Fatalf("login from a fresh source during the flood: %v", err)
	}
	if time.Since(floodAt) > split.SniffTimeout-time.Second {
		t.Fatalf("checks took %v: the flood may already be shed", time.Since(floodAt))
	}

	// The flood is shed (refused, sniff timeout, unanswered pings) ...
	end := floodAt.Add(split.SniffTimeout + 5*time.Second)
	for i, c := range flood {
		_ = c.SetReadDeadline(end)
		_, err := io.Copy(io.Discard, c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("flood connection %d (from %s) still open after %v", i, c.LocalAddr(), time.Since(floodAt).Round(time.Second))
		}
	}
	t.Logf("flood shed after %v", time.Since(floodAt).Round(time.Millisecond))
	// ... and its sources are served again; the stream is still up.
	for i, src := range sources[1:] {
		k, _ := keys.NewPrivate()
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := loginFrom(lctx, t, src, url, setupKey, fmt.Sprintf("after-%d", i), k)
		cancel()
		if err != nil {
			t.Fatalf("login from %s after the flood: %v", src, err)
		}
	}
	select {
	case err := <-syncDone:
		syncDone <- err
		t.Fatalf("sync stream ended: %v", err)
	default:
	}
	def.Enabled = true
	if _, err := svc.Put(ctx, acct, def); err != nil {
		t.Fatal(err)
	}
	for next("delta after the flood").GetDelta() == nil {
	}
}
