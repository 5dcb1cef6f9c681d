package signal_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"petrel/internal/keys"
	"petrel/internal/seal"
	"petrel/proto/signalpb"
	"petrel/signal"
	"petrel/signal/client"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestExchangeBothDirectionsSealed(t *testing.T) {
	ts := startServer(t, signal.Config{}, "")
	a := startClient(t, ts.addr, newKey(t), nil)
	b := startClient(t, ts.addr, newKey(t), nil)
	waitConnected(t, a, b)

	const ufragA, ufragB = "UFRAGfromAlice1234", "UFRAGfromBob5678"
	if err := a.Send(context.Background(), b.PublicKey(), offer(ufragA)); err != nil {
		t.Fatal(err)
	}
	got := recv(t, b)
	if got.from != a.PublicKey() || got.msg.GetOffer().GetIceUfrag() != ufragA {
		t.Fatalf("b got %v from %s", got.msg, got.from.Short())
	}
	if !proto.Equal(got.msg, offer(ufragA)) {
		t.Fatalf("offer changed in transit: %v", got.msg)
	}
	reply := &signalpb.PeerMessage{Kind: &signalpb.PeerMessage_Answer{Answer: &signalpb.Answer{SessionId: 7, IceUfrag: ufragB}}}
	if err := b.Send(context.Background(), a.PublicKey(), reply); err != nil {
		t.Fatal(err)
	}
	got = recv(t, a)
	if got.from != b.PublicKey() || got.msg.GetAnswer().GetIceUfrag() != ufragB {
		t.Fatalf("a got %v from %s", got.msg, got.from.Short())
	}
	cand := &signalpb.PeerMessage{Kind: &signalpb.PeerMessage_Candidate{Candidate: &signalpb.Candidate{SessionId: 7, Candidate: "candidate:2 1 udp 1 127.0.0.1 5000 typ host"}}}
	if err := a.Send(context.Background(), b.PublicKey(), cand); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, b); got.msg.GetCandidate().GetCandidate() != cand.GetCandidate().GetCandidate() {
		t.Fatalf("candidate: %v", got.msg)
	}

	// What the server received: envelopes whose bodies are sealed.
	var envs int
	for _, f := range ts.frames() {
		for _, e := range f.Envelopes {
			envs++
			for _, plain := range []string{ufragA, ufragB, "pwd-" + ufragA, "127.0.0.1"} {
				if bytes.Contains(e.Body, []byte(plain)) {
					t.Fatalf("server saw plaintext %q in an envelope body", plain)
				}
			}
		}
	}
	if envs != 3 {
		t.Fatalf("server saw %d envelopes, want 3", envs)
	}
}

func TestFromIsSetByServer(t *testing.T) {
	ts := startServer(t, signal.Config{}, "")
	victim := startClient(t, ts.addr, newKey(t), nil)
	b := startClient(t, ts.addr, newKey(t), nil)
	waitConnected(t, victim, b)

	// A raw registered stream that claims to be the victim in From.
	key := newKey(t)
	st, closeFn := rawStream(t, ts.addr)
	defer closeFn()
	registerRaw(t, st, key, key)
	vp := victim.PublicKey()
	pt, _ := proto.Marshal(offer("forged"))
	body, _ := seal.Seal(pt, b.PublicKey(), key)
	if err := st.Send(&signalpb.ClientFrame{Envelopes: []*signalpb.Envelope{{To: bPub(b), From: vp[:], Id: 1, Body: body}}}); err != nil {
		t.Fatal(err)
	}
	// The server must stamp From with the registered key, not the claimed
	// victim key: b opens the body with From and sees the real sender.
	if got := recv(t, b); got.from != key.Public() || got.msg.GetOffer().GetIceUfrag() != "forged" {
		t.Fatalf("b got %v from %s, want from the raw stream's key", got.msg, got.from.Short())
	}
}

func bPub(c *testClient) []byte { p := c.PublicKey(); return p[:] }

// registerRaw registers st as the holder of claim, proving with prove.
func registerRaw(t *testing.T, st signalpb.Signal_ConnectClient, claim, prove keys.Private) error {
	t.Helper()
	pub := claim.Public()
	if err := st.Send(&signalpb.ClientFrame{Kind: &signalpb.ClientFrame_Hello{Hello: &signalpb.Hello{PublicKey: pub[:]}}}); err != nil {
		t.Fatal(err)
	}
	f, err := st.Recv()
	if err != nil {
		t.Fatalf("recv challenge: %v", err)
	}
	spub, _ := keys.PublicFromBytes(f.GetChallenge().GetServerPublicKey())
	sealed, err := seal.Seal(f.GetChallenge().GetNonce(), spub, prove)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&signalpb.ClientFrame{Kind: &signalpb.ClientFrame_ChallengeResponse{ChallengeResponse: &signalpb.ChallengeResponse{Sealed: sealed}}}); err != nil {
		t.Fatal(err)
	}
	f, err = st.Recv()
	if err != nil {
		return err
	}
	if f.GetRegistered() == nil {
		t.Fatalf("expected Registered, got %v", f)
	}
	return nil
}

func TestImpostorCannotRegisterOrEvict(t *testing.T) {
	ts := startServer(t, signal.Config{}, "")
	victim := startClient(t, ts.addr, newKey(t), nil)
	b := startClient(t, ts.addr, newKey(t), nil)
	waitConnected(t, victim, b)

	// The attacker knows the victim's public key but not its private key.
	victimOnlyPub := victim.key // used only for the Hello claim
	attacker := newKey(t)
	st, closeFn := rawStream(t, ts.addr)
	defer closeFn()
	err := registerRaw(t, st, victimOnlyPub, attacker)
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("impostor registration: got %v, want PermissionDenied", err)
	}
	if got := ts.sig.Stats().AuthFailures; got != 1 {
		t.Fatalf("auth failures = %d, want 1", got)
	}
	// Garbage instead of a sealed nonce is refused too.
	st2, closeFn2 := rawStream(t, ts.addr)
	defer closeFn2()
	vp := victim.PublicKey()
	_ = st2.Send(&signalpb.ClientFrame{Kind: &signalpb.ClientFrame_Hello{Hello: &signalpb.Hello{PublicKey: vp[:]}}})
	if _, err := st2.Recv(); err != nil {
		t.Fatal(err)
	}
	_ = st2.Send(&signalpb.ClientFrame{Kind: &signalpb.ClientFrame_ChallengeResponse{ChallengeResponse: &signalpb.ChallengeResponse{Sealed: make([]byte, 72)}}})
	if _, err := st2.Recv(); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("garbage response: got %v, want PermissionDenied", err)
	}

	// The victim was not evicted and still receives messages.
	if !victim.Connected() || ts.sig.Stats().Replaced != 0 {
		t.Fatal("victim lost its session")
	}
	if err := b.Send(context.Background(), victim.PublicKey(), offer("after-attack")); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, victim); got.msg.GetOffer().GetIceUfrag() != "after-attack" {
		t.Fatalf("victim got %v", got.msg)
	}
}

func TestUnknownRecipientGetsError(t *testing.T) {
	ts := startServer(t, signal.Config{}, "")
	a := startClient(t, ts.addr, newKey(t), nil)
	waitConnected(t, a)
	nobody := newKey(t).Public()
	if err := a.Send(context.Background(), nobody, offer("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-a.errs:
		if e.To != nobody || !errors.Is(e, client.ErrRecipientNotConnected) || e.ID == 0 {
			t.Fatalf("delivery error: %+v", e)
		}
	case <-time.After(waitFor):
		t.Fatal("no delivery error")
	}
	if got := ts.sig.Stats().Undeliverable; got != 1 {
		t.Fatalf("undeliverable = %d", got)
	}
}

func TestSendWhileDisconnected(t *testing.T) {
	c := client.New(client.Config{Target: "127.0.0.1:1", Key: newKey(t)})
	if err := c.Send(context.Background(), newKey(t).Public(), offer("x")); !errors.Is(err, client.ErrNotConnected) {
		t.Fatalf("send before start: %v", err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); !errors.Is(err, client.ErrStarted) {
		t.Fatalf("second start: %v", err)
	}
	c.Stop()
	c.Stop()
	if err := c.Start(context.Background()); !errors.Is(err, client.ErrStopped) {
		t.Fatalf("start after stop: %v", err)
	}
}

func TestNewerSessionReplacesOlder(t *testing.T) {
	ts := startServer(t, signal.Config{}, "")
	key := newKey(t)
	old, closeFn := rawStream(t, ts.addr)
	defer closeFn()
	if err := registerRaw(t, old, key, key); err != nil {
		t.Fatal(err)
	}
	eventually(t, "old registered", func() bool { return ts.sig.Connected() == 1 })

	newer := startClient(t, ts.addr, key, nil)
	b := startClient(t, ts.addr, newKey(t), nil)
	waitConnected(t, newer, b)

	for {
		_, err := old.Recv()
		if err == nil {
			continue
		}
		st := status.Convert(err)
		if st.Code() != codes.Aborted {
			t.Fatalf("old stream ended with %v, want Aborted", err)
		}
		break
	}
	if ts.sig.Stats().Replaced != 1 || ts.sig.Connected() != 2 {
		t.Fatalf("stats %+v", ts.sig.Stats())
	}
	if err := b.Send(context.Background(), key.Public(), offer("to-newer")); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, newer); got.msg.GetOffer().GetIceUfrag() != "to-newer" {
		t.Fatalf("newer got %v", got.msg)
	}
}

func TestReplacedClientBacksOff(t *testing.T) {
	ts := startServer(t, signal.Config{}, "")
	key := newKey(t)
	first := startClient(t, ts.addr, key, func(c *client.Config) { c.ReplacedDelay = time.Hour })
	waitConnected(t, first)
	second := startClient(t, ts.addr, key, func(c *client.Config) { c.ReplacedDelay = time.Hour })
	waitConnected(t, second)
	eventually(t, "first disconnected", func() bool { return !first.Connected() })
	if !second.Connected() || ts.sig.Connected() != 1 {
		t.Fatal("second lost its session")
	}
}

func TestServerRestartClientReconnects(t *testing.T) {
	ts := startServer(t, signal.Config{}, "")
	a := startClient(t, ts.addr, newKey(t), nil)
	b := startClient(t, ts.addr, newKey(t), nil)
	waitConnected(t, a, b)

	key := ts.key
	addr := ts.addr
	ts.stop()
	eventually(t, "clients disconnected", func() bool { return !a.Connected() && !b.Connected() })

	ts2 := startServer(t, signal.Config{Key: key}, addr)
	waitConnected(t, a, b)
	if ts2.sig.Connected() != 2 {
		t.Fatalf("connected = %d", ts2.sig.Connected())
	}
	if err := a.Send(context.Background(), b.PublicKey(), offer("after-restart")); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, b); got.msg.GetOffer().GetIceUfrag() != "after-restart" {
		t.Fatalf("b got %v", got.msg)
	}
	var seen []bool
	for len(a.states) > 0 {
		seen = append(seen, <-a.states)
	}
	if len(seen) < 2 || !seen[0] || seen[1] {
		t.Fatalf("state changes %v, want up, down, ...", seen)
	}
}

func TestRegistrationTimeout(t *testing.T) {
	ts := startServer(t, signal.Config{RegisterTimeout: 100 * time.Millisecond}, "")
	st, closeFn := rawStream(t, ts.addr)
	defer closeFn()
	if _, err := st.Recv(); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("silent stream: got %v, want DeadlineExceeded", err)
	}
}

func TestHeartbeatClosesDeadStream(t *testing.T) {
	ts := startServer(t, signal.Config{HeartbeatInterval: 20 * time.Millisecond}, "")
	key := newKey(t)
	st, closeFn := rawStream(t, ts.addr)
	defer closeFn()
	if err := registerRaw(t, st, key, key); err != nil {
		t.Fatal(err)
	}
	// Never answer pings.
	for {
		f, err := st.Recv()
		if err != nil {
			if status.Code(err) != codes.DeadlineExceeded {
				t.Fatalf("got %v, want DeadlineExceeded", err)
			}
			break
		}
		if f.GetPing() == nil {
			t.Fatalf("unexpected frame %v", f)
		}
	}
	eventually(t, "session removed", func() bool { return ts.sig.Connected() == 0 })

	// A real client answers the server's pings.
	c := startClient(t, ts.addr, newKey(t), nil)
	waitConnected(t, c)
	eventually(t, "a pong from the client", func() bool {
		for _, f := range ts.frames() {
			if f.GetPong() != nil {
				return true
			}
		}
		return false
	})
}

// TestStuckRecipientIsCutByHeartbeatNotBySenders: a registered recipient
// that never reads fills its (small) queue; senders are then told it is
// busy, nobody is disconnected for it, and the heartbeat removes the
// stuck session.
func TestStuckRecipientIsCutByHeartbeatNotBySenders(t *testing.T) {
	ts := startServer(t, signal.Config{QueueSize: 8, HeartbeatInterval: 200 * time.Millisecond}, "")
	stuckKey := newKey(t)
	st, closeFn := rawStream(t, ts.addr)
	defer closeFn()
	if err := registerRaw(t, st, stuckKey, stuckKey); err != nil {
		t.Fatal(err)
	}
	a := startClient(t, ts.addr, newKey(t), nil)
	waitConnected(t, a)
	big := offer(string(bytes.Repeat([]byte("u"), 30000)))
	eventually(t, "sender told the recipient is busy", func() bool {
		for range 3 {
			_ = a.Send(context.Background(), stuckKey.Public(), big)
		}
		return ts.sig.Stats().RecipientBusy > 0
	})
	eventually(t, "stuck recipient removed by the heartbeat", func() bool {
		return ts.sig.Connected() == 1 && ts.sig.Stats().DeadStreams == 1
	})
	if !a.Connected() || ts.sig.Stats().Overflows != 0 {
		t.Fatalf("sender disconnected or a queue overflowed: %+v", ts.sig.Stats())
	}
}

func TestStopEndsStreams(t *testing.T) {
	ts := startServer(t, signal.Config{}, "")
	a := startClient(t, ts.addr, newKey(t), nil)
	waitConnected(t, a)
	ts.sig.Stop()
	ts.sig.Stop()
	eventually(t, "client disconnected", func() bool { return !a.Connected() })
	st, closeFn := rawStream(t, ts.addr)
	defer closeFn()
	if _, err := st.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("after stop: %v", err)
	}
}

func TestLowOrderKeyRefused(t *testing.T) {
	ts := startServer(t, signal.Config{}, "")
	st, closeFn := rawStream(t, ts.addr)
	defer closeFn()
	lowOrder := make([]byte, 32)
	lowOrder[0] = 1 // u = 1 has order 4
	_ = st.Send(&signalpb.ClientFrame{Kind: &signalpb.ClientFrame_Hello{Hello: &signalpb.Hello{PublicKey: lowOrder}}})
	if _, err := st.Recv(); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("low-order key: got %v, want InvalidArgument", err)
	}
}

func TestRateLimitAnswersSender(t *testing.T) {
	ts := startServer(t, signal.Config{Rate: 0.001, Burst: 2}, "")
	a := startClient(t, ts.addr, newKey(t), nil)
	b := startClient(t, ts.addr, newKey(t), nil)
	waitConnected(t, a, b)
	for i := 0; i < 5; i++ {
		if err := a.Send(context.Background(), b.PublicKey(), offer("x")); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case e := <-a.errs:
		if e.Code != signalpb.ErrorCode_RATE_LIMITED || e.To != b.PublicKey() {
			t.Fatalf("got %+v", e)
		}
	case <-time.After(waitFor):
		t.Fatal("no rate-limit error")
	}
	if !b.Connected() || ts.sig.Stats().Overflows != 0 {
		t.Fatal("recipient was cut")
	}
}

func TestCustomDialerIsUsed(t *testing.T) {
	ts := startServer(t, signal.Config{}, "")
	var dialed atomic.Int32
	var gotAddr atomic.Value
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		dialed.Add(1)
		gotAddr.Store(addr)
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	a := startClient(t, ts.addr, newKey(t), func(c *client.Config) { c.Dialer = dial })
	b := startClient(t, ts.addr, newKey(t), nil)
	waitConnected(t, a, b)
	if dialed.Load() == 0 || gotAddr.Load() != ts.addr {
		t.Fatalf("dialer calls %d, addr %v", dialed.Load(), gotAddr.Load())
	}
	if err := a.Send(context.Background(), b.PublicKey(), offer("via-dialer")); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, b); got.msg.GetOffer().GetIceUfrag() != "via-dialer" {
		t.Fatalf("b got %v", got.msg)
	}
}

func TestPinnedServerKeyMismatchNeverConnects(t *testing.T) {
	ts := startServer(t, signal.Config{}, "")
	wrong := newKey(t).Public()
	a := startClient(t, ts.addr, newKey(t), func(c *client.Config) { c.ServerKey = wrong })
	// Wait for a second Hello (so the first attempt is over) and check the
	// client never answered a challenge from the unpinned key.
	eventually(t, "two hellos", func() bool {
		n := 0
		for _, f := range ts.frames() {
			if f.GetHello() != nil {
				n++
			}
		}
		return n >= 2
	})
	for _, f := range ts.frames() {
		if f.GetChallengeResponse() != nil {
			t.Fatal("client answered a challenge from an unpinned server key")
		}
	}
	if a.Connected() || ts.sig.Connected() != 0 {
		t.Fatal("client registered with an unpinned server key")
	}
}
