package signal_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"petrel/internal/keys"
	"petrel/internal/seal"
	"petrel/proto/signalpb"
	"petrel/signal"
	"petrel/signal/client"
)

// rawStreamFrom opens a bare stream whose TCP connection comes from the
// local IP (127.0.0.x: all of 127/8 is loopback on Linux).
func rawStreamFrom(t *testing.T, addr, local string) (signalpb.Signal_ConnectClient, func()) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	cc, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return d.DialContext(ctx, "tcp", a) }))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := signalpb.NewSignalClient(cc).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st, func() { cancel(); _ = cc.Close() }
}

// hello sends Hello for pub and returns the challenge (or the error that
// ended the stream instead).
func hello(t *testing.T, st signalpb.Signal_ConnectClient, pub keys.Public) (*signalpb.Challenge, error) {
	t.Helper()
	// A Send on a stream the server already ended fails with io.EOF; the
	// status comes from Recv.
	_ = st.Send(&signalpb.ClientFrame{Kind: &signalpb.ClientFrame_Hello{Hello: &signalpb.Hello{PublicKey: pub[:]}}})
	f, err := st.Recv()
	if err != nil {
		return nil, err
	}
	if f.GetChallenge() == nil {
		t.Fatalf("expected a challenge, got %v", f)
	}
	return f.GetChallenge(), nil
}

// answer sends a challenge response and returns how registration ended.
func answer(st signalpb.Signal_ConnectClient, sealed []byte) error {
	_ = st.Send(&signalpb.ClientFrame{Kind: &signalpb.ClientFrame_ChallengeResponse{ChallengeResponse: &signalpb.ChallengeResponse{Sealed: sealed}}})
	f, err := st.Recv()
	if err != nil {
		return err
	}
	if f.GetRegistered() == nil {
		return fmt.Errorf("expected Registered, got %v", f)
	}
	return nil
}

func sealFor(t *testing.T, ch *signalpb.Challenge, nonce []byte, k keys.Private) []byte {
	t.Helper()
	spub, err := keys.PublicFromBytes(ch.ServerPublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := seal.Seal(nonce, spub, k)
	if err != nil {
		t.Fatal(err)
	}
	return sealed
}

// TestChallengeBoundToNonce: a response correctly sealed by the key's
// holder but for another stream's nonce, or replayed from an earlier
// registration, is refused with PermissionDenied.
func TestChallengeBoundToNonce(t *testing.T) {
	ts := startServer(t, signal.Config{}, "")
	k := newKey(t)

	// A genuine registration; an eavesdropper records its response.
	st1, close1 := rawStream(t, ts.addr)
	defer close1()
	ch1, err := hello(t, st1, k.Public())
	if err != nil {
		t.Fatal(err)
	}
	recorded := sealFor(t, ch1, ch1.Nonce, k)
	if err := answer(st1, recorded); err != nil {
		t.Fatalf("genuine registration: %v", err)
	}

	// Replay of the recorded response on a new stream.
	st2, close2 := rawStream(t, ts.addr)
	defer close2()
	if _, err := hello(t, st2, k.Public()); err != nil {
		t.Fatal(err)
	}
	if err := answer(st2, recorded); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("replayed response: got %v, want PermissionDenied", err)
	}

	// A response sealed for a concurrent stream's nonce.
	st3, close3 := rawStream(t, ts.addr)
	defer close3()
	st4, close4 := rawStream(t, ts.addr)
	defer close4()
	ch3, err := hello(t, st3, k.Public())
	if err != nil {
		t.Fatal(err)
	}
	ch4, err := hello(t, st4, k.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := answer(st3, sealFor(t, ch3, ch4.Nonce, k)); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("response to another stream's nonce: got %v, want PermissionDenied", err)
	}
	if got := ts.sig.Stats(); got.AuthFailures != 2 || got.Replaced != 0 || got.Connected != 1 {
		t.Fatalf("stats %+v: want 2 auth failures and the genuine session untouched", got)
	}
	// The right nonce still works on the other stream.
	if err := answer(st4, sealFor(t, ch4, ch4.Nonce, k)); err != nil {
		t.Fatalf("genuine response: %v", err)
	}
}

// TestDefaultsCapUnregisteredKeys is the reproduction: one address
// opens sessions for 100 fresh keys. With the default limits at most
// DefaultMaxSessionsPerSource are accepted; the rest end with
// ResourceExhausted.
func TestDefaultsCapUnregisteredKeys(t *testing.T) {
	ts := startServer(t, signal.Config{}, "")
	accepted, exhausted := 0, 0
	for range 100 {
		st, closeFn := rawStream(t, ts.addr)
		defer closeFn()
		k := newKey(t)
		ch, err := hello(t, st, k.Public())
		if err == nil {
			err = answer(st, sealFor(t, ch, ch.Nonce, k))
		}
		switch {
		case err == nil:
			accepted++
		case status.Code(err) == codes.ResourceExhausted:
			exhausted++
		default:
			t.Fatalf("unexpected: %v", err)
		}
	}
	if accepted > signal.DefaultMaxSessionsPerSource || accepted+exhausted != 100 {
		t.Fatalf("accepted %d, exhausted %d: want at most %d accepted", accepted, exhausted, signal.DefaultMaxSessionsPerSource)
	}
}

// TestSessionsCappedPerSource: a fourth stream from an address holding
// three (MaxSessionsPerSource 3) is refused; another address is not
// affected; closing a session frees its slot.
func TestSessionsCappedPerSource(t *testing.T) {
	ts := startServer(t, signal.Config{MaxSessionsPerSource: 3, OpenRate: -1}, "")
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	for range 3 {
		st, c := rawStreamFrom(t, ts.addr, "127.0.0.1")
		closers = append(closers, c)
		k := newKey(t)
		if err := registerRaw(t, st, k, k); err != nil {
			t.Fatal(err)
		}
	}
	st, c := rawStreamFrom(t, ts.addr, "127.0.0.1")
	closers = append(closers, c)
	if _, err := hello(t, st, newKey(t).Public()); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("fourth stream from the address: got %v, want ResourceExhausted", err)
	}
	other, c := rawStreamFrom(t, ts.addr, "127.0.0.2")
	closers = append(closers, c)
	k := newKey(t)
	if err := registerRaw(t, other, k, k); err != nil {
		t.Fatalf("stream from another address: %v", err)
	}
	closers[0]()
	eventually(t, "slot freed", func() bool {
		st, c := rawStreamFrom(t, ts.addr, "127.0.0.1")
		defer c()
		_, err := hello(t, st, newKey(t).Public())
		return err == nil
	})
	if got := ts.sig.Stats().SourceCapped; got == 0 {
		t.Fatal("no stream counted as capped")
	}
}

func TestTotalSessionsCapped(t *testing.T) {
	ts := startServer(t, signal.Config{MaxSessions: 2, MaxSessionsPerSource: -1, OpenRate: -1}, "")
	ka, kb := newKey(t), newKey(t)
	for _, k := range []keys.Private{ka, kb} {
		st, c := rawStream(t, ts.addr)
		defer c()
		if err := registerRaw(t, st, k, k); err != nil {
			t.Fatal(err)
		}
	}
	st, c := rawStream(t, ts.addr)
	defer c()
	kc := newKey(t)
	ch, err := hello(t, st, kc.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := answer(st, sealFor(t, ch, ch.Nonce, kc)); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("third key: got %v, want ResourceExhausted", err)
	}
	// A registered key may still reconnect (replacing its session).
	st2, c2 := rawStream(t, ts.addr)
	defer c2()
	if err := registerRaw(t, st2, ka, ka); err != nil {
		t.Fatalf("reconnect of a registered key: %v", err)
	}
	if got := ts.sig.Stats(); got.SessionCapped != 1 || got.Connected != 2 {
		t.Fatalf("stats %+v", got)
	}
}

func TestPendingRegistrationsCapped(t *testing.T) {
	ts := startServer(t, signal.Config{MaxPending: 2, OpenRate: -1}, "")
	for range 2 { // two streams stay in the handshake
		st, c := rawStream(t, ts.addr)
		defer c()
		if _, err := hello(t, st, newKey(t).Public()); err != nil {
			t.Fatal(err)
		}
	}
	st, c := rawStream(t, ts.addr)
	defer c()
	_, err := hello(t, st, newKey(t).Public())
	if status.Code(err) != codes.ResourceExhausted || retryInfo(err) <= 0 {
		t.Fatalf("third handshake: got %v, want ResourceExhausted with a retry hint", err)
	}
}

func TestAuthorizeRefusesUnregisteredKeys(t *testing.T) {
	registered := newKey(t)
	ts := startServer(t, signal.Config{Authorize: func(k keys.Public) bool { return k == registered.Public() }}, "")
	st, c := rawStream(t, ts.addr)
	defer c()
	if err := registerRaw(t, st, registered, registered); err != nil {
		t.Fatalf("registered key: %v", err)
	}
	st2, c2 := rawStream(t, ts.addr)
	defer c2()
	stranger := newKey(t)
	if err := registerRaw(t, st2, stranger, stranger); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("unregistered key: got %v, want PermissionDenied", err)
	}
	if got := ts.sig.Stats(); got.Unauthorized != 1 || got.Connected != 1 {
		t.Fatalf("stats %+v", got)
	}
}

func retryInfo(err error) time.Duration {
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

// fakeClock is a manually advanced clock for the open-rate limiter.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestOpenRateLimitedWithRetryHint: an address opening streams faster
// than OpenRate (burst OpenBurst) gets ResourceExhausted with a RetryInfo
// saying when the next open is allowed; another address is unaffected.
func TestOpenRateLimitedWithRetryHint(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	ts := startServer(t, signal.Config{OpenRate: 0.5, OpenBurst: 2, Now: clk.now}, "")
	open := func(local string) error {
		st, c := rawStreamFrom(t, ts.addr, local)
		defer c()
		_, err := hello(t, st, newKey(t).Public())
		return err
	}
	for i := range 2 {
		if err := open("127.0.0.1"); err != nil {
			t.Fatalf("open %d within the burst: %v", i, err)
		}
	}
	err := open("127.0.0.1")
	if status.Code(err) != codes.ResourceExhausted || retryInfo(err) != 2*time.Second {
		t.Fatalf("open over the limit: got %v (retry %v), want ResourceExhausted with a 2s hint", err, retryInfo(err))
	}
	if err := open("127.0.0.2"); err != nil {
		t.Fatalf("other address: %v", err)
	}
	clk.advance(2 * time.Second)
	if err := open("127.0.0.1"); err != nil {
		t.Fatalf("open after the hinted delay: %v", err)
	}
	if got := ts.sig.Stats().OpensLimited; got != 1 {
		t.Fatalf("opens limited = %d, want 1", got)
	}
}

// TestClientHonoursRetryHint: a client refused with a retry hint waits for
// it instead of retrying on its (much shorter) backoff.
func TestClientHonoursRetryHint(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)} // frozen: no refill
	ts := startServer(t, signal.Config{OpenRate: 0.25, OpenBurst: 1, Now: clk.now}, "")
	first := startClient(t, ts.addr, newKey(t), nil)
	waitConnected(t, first)
	startClient(t, ts.addr, newKey(t), func(c *client.Config) {
		c.BackoffMin, c.BackoffMax = 10*time.Millisecond, 20*time.Millisecond
	})
	eventually(t, "second client refused", func() bool { return ts.sig.Stats().OpensLimited >= 1 })
	time.Sleep(time.Second) // the hint is 4 s; the backoff alone would retry ~50 times
	if got := ts.sig.Stats().OpensLimited; got != 1 {
		t.Fatalf("client retried %d times within a second of a 4 s hint", got)
	}
}

// slowLink is a client stream interceptor that reads like a slow link
// (bytesPerSec), so the server's queue for this client backs up, and that
// records the largest frame received.
type slowLink struct {
	bytesPerSec int
	maxFrame    atomic.Int64
	frames      atomic.Int64
}

func (l *slowLink) intercept(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cs, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		return nil, err
	}
	return &slowStream{ClientStream: cs, link: l}, nil
}

type slowStream struct {
	grpc.ClientStream
	link *slowLink
}

func (s *slowStream) RecvMsg(m any) error {
	if err := s.ClientStream.RecvMsg(m); err != nil {
		return err
	}
	if pm, ok := m.(proto.Message); ok {
		s.link.frames.Add(1)
		n := proto.Size(pm)
		for cur := s.link.maxFrame.Load(); int64(n) > cur && !s.link.maxFrame.CompareAndSwap(cur, int64(n)); cur = s.link.maxFrame.Load() {
		}
		time.Sleep(time.Duration(n) * time.Second / time.Duration(s.link.bytesPerSec))
	}
	return nil
}

// attacker is a registered raw session that floods a victim.
type attacker struct {
	st   signalpb.Signal_ConnectClient
	stop func()
	done chan struct{}
}

// startFlood registers a fresh key and sends frames of big (max-size) and
// small envelopes with garbage bodies to victim, claiming to come from
// forgedFrom, until stopped: the big ones fill the victim's queue bytes,
// the small ones the slack and its item count. It reads (and ignores)
// whatever the server sends back.
func startFlood(t *testing.T, addr string, victim, forgedFrom keys.Public, big, small int) *attacker {
	t.Helper()
	st, closeFn := rawStream(t, addr)
	k := newKey(t)
	if err := registerRaw(t, st, k, k); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, signal.DefaultMaxBody)
	_, _ = rand.Read(body)
	ctx, cancel := context.WithCancel(context.Background())
	a := &attacker{st: st, done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			if _, err := st.Recv(); err != nil {
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for id := uint64(0); ctx.Err() == nil; {
			f := &signalpb.ClientFrame{}
			for i := range big + small {
				id++
				b := body
				if i >= big {
					b = body[:16]
				}
				f.Envelopes = append(f.Envelopes, &signalpb.Envelope{To: victim[:], From: forgedFrom[:], Id: id, Body: b})
			}
			if st.Send(f) != nil {
				return
			}
			time.Sleep(25 * time.Millisecond)
		}
	}()
	a.stop = func() { cancel(); closeFn(); wg.Wait() }
	return a
}

// TestStrangerCannotDisconnectVictim is the attack: strangers who
// know a victim's public key flood it with maximum-size envelopes with
// forged senders, send oversize bodies and oversize batches, and try to
// register as the victim, while the victim reads slowly (16 MiB/s). The
// per-sender rate limits are off, to test the queue and frame limits
// alone. The victim must stay connected (0 disconnects) and receive every
// message a legitimate peer sends meanwhile, and nothing that claims to be
// from that peer but is not.
func TestStrangerCannotDisconnectVictim(t *testing.T) {
	ts := startServer(t, signal.Config{Rate: -1, ByteRate: -1, OpenRate: -1}, "")
	link := &slowLink{bytesPerSec: 16 << 20}
	var disconnects atomic.Int32
	victim := startClient(t, ts.addr, newKey(t), func(c *client.Config) {
		c.DialOptions = append(c.DialOptions, grpc.WithStreamInterceptor(link.intercept))
	})
	victim.OnStateChange(func(up bool) {
		if !up {
			disconnects.Add(1)
		}
	})
	legit := startClient(t, ts.addr, newKey(t), nil)
	waitConnected(t, victim, legit)
	vpub, lpub := victim.PublicKey(), legit.PublicKey()

	var flood []*attacker
	for range 3 {
		flood = append(flood, startFlood(t, ts.addr, vpub, lpub, 15, 200))
	}
	defer func() {
		for _, a := range flood {
			a.stop()
		}
	}()
	eventually(t, "the victim's queue full", func() bool {
		if n := disconnects.Load(); n != 0 {
			t.Fatalf("victim disconnected %d times by the flood", n)
		}
		return ts.sig.Stats().RecipientBusy > 100
	})

	// More attacks on the side: oversize bodies, an oversize batch (which
	// ends the attacker's own stream), impostor registrations.
	side := newKey(t)
	st, closeFn := rawStream(t, ts.addr)
	defer closeFn()
	if err := registerRaw(t, st, side, side); err != nil {
		t.Fatal(err)
	}
	huge := make([]byte, signal.DefaultMaxBody+1)
	_ = st.Send(&signalpb.ClientFrame{Envelopes: []*signalpb.Envelope{{To: vpub[:], Id: 1, Body: huge}}})
	many := &signalpb.ClientFrame{}
	for range signal.DefaultMaxBatch + 1 {
		many.Envelopes = append(many.Envelopes, &signalpb.Envelope{To: vpub[:], Id: 2, Body: []byte("x")})
	}
	_ = st.Send(many)

	const legitMessages = 20
	for i := range legitMessages {
		if i%10 == 0 {
			imp, c := rawStream(t, ts.addr)
			if err := registerRaw(t, imp, victim.key, side); status.Code(err) != codes.PermissionDenied {
				t.Fatalf("impostor: %v", err)
			}
			c()
		}
		if err := legit.Send(context.Background(), vpub, offer(fmt.Sprintf("legit-%d", i))); err != nil {
			t.Fatalf("legit send %d: %v", i, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
	got := map[string]bool{}
	deadline := time.After(waitFor)
	for len(got) < legitMessages {
		select {
		case r := <-victim.msgs:
			if r.from != lpub {
				t.Fatalf("victim got a message from %s, not the legit peer", r.from.Short())
			}
			got[r.msg.GetOffer().GetIceUfrag()] = true
		case e := <-legit.errs:
			t.Fatalf("legit message refused: %v", e)
		case <-deadline:
			t.Fatalf("victim received %d of %d legit messages (disconnects %d, stats %+v)", len(got), legitMessages, disconnects.Load(), ts.sig.Stats())
		}
	}
	if n := disconnects.Load(); n != 0 || !victim.Connected() {
		t.Fatalf("victim disconnected %d times during the attack", n)
	}
	st2 := ts.sig.Stats()
	t.Logf("victim: largest frame %d bytes; server %+v", link.maxFrame.Load(), st2)
	if st2.Replaced != 0 || st2.Rejected == 0 || st2.AuthFailures == 0 || st2.Overflows != 0 {
		t.Fatalf("side attacks not seen as expected: %+v", st2)
	}
}

// TestFramesFitReceiverLimit: a victim whose gRPC receive limit is exactly
// the server's MaxFrame (1 MiB) and reads slowly is flooded with
// maximum-size envelopes by three senders; frames are batched (the largest is over half the
// limit) but none exceeds it, so the victim never disconnects.
func TestFramesFitReceiverLimit(t *testing.T) {
	ts := startServer(t, signal.Config{Rate: -1, ByteRate: -1, OpenRate: -1}, "")
	link := &slowLink{bytesPerSec: 32 << 20}
	var disconnects atomic.Int32
	victim := startClient(t, ts.addr, newKey(t), func(c *client.Config) {
		c.DialOptions = append(c.DialOptions,
			grpc.WithStreamInterceptor(link.intercept),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(signal.DefaultMaxFrame)))
	})
	victim.OnStateChange(func(up bool) {
		if !up {
			disconnects.Add(1)
		}
	})
	waitConnected(t, victim)
	for range 3 { // one sender alone could not fill more than its quarter
		a := startFlood(t, ts.addr, victim.PublicKey(), victim.PublicKey(), 15, 0)
		defer a.stop()
	}
	// A frame over the limit would end the stream (counted as a disconnect
	// before the client reconnects and receives more), so wait for plenty
	// of frames after batching started.
	eventually(t, "batched frames delivered", func() bool { return link.maxFrame.Load() > signal.DefaultMaxFrame/2 })
	start := link.frames.Load()
	eventually(t, "more frames", func() bool { return link.frames.Load() > start+20 })
	if n := disconnects.Load(); n != 0 || link.maxFrame.Load() > signal.DefaultMaxFrame {
		t.Fatalf("victim disconnected %d times; largest frame %d bytes", n, link.maxFrame.Load())
	}
}

// TestByteRateLimitAnswersSender: a sender over its byte budget (burst
// 80 KiB, refill 1 KiB/s) is told RATE_LIMITED; the recipient is not cut.
func TestByteRateLimitAnswersSender(t *testing.T) {
	ts := startServer(t, signal.Config{ByteRate: 1 << 10, ByteBurst: 80 << 10}, "")
	a := startClient(t, ts.addr, newKey(t), nil)
	b := startClient(t, ts.addr, newKey(t), nil)
	waitConnected(t, a, b)
	big := offer(string(make([]byte, 15<<10))) // ~30 KiB: ufrag and pwd
	for range 3 {
		if err := a.Send(context.Background(), b.PublicKey(), big); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case e := <-a.errs:
		if e.Code != signalpb.ErrorCode_RATE_LIMITED || e.To != b.PublicKey() {
			t.Fatalf("got %+v", e)
		}
	case <-time.After(waitFor):
		t.Fatal("no rate-limit error for the third 30 KiB message")
	}
	if got := drain(b.msgs, 2); len(got) != 2 || !b.Connected() {
		t.Fatalf("recipient got %d messages (connected %v), want the first 2", len(got), b.Connected())
	}
}

// drain waits for n values from ch (or waitFor) and returns them.
func drain[T any](ch chan T, n int) []T {
	var out []T
	deadline := time.After(waitFor)
	for len(out) < n {
		select {
		case v := <-ch:
			out = append(out, v)
		case <-deadline:
			return out
		}
	}
	return out
}
