package server

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	"petrel/internal/keys"
	"petrel/internal/replay"
	"petrel/internal/seal"
	"petrel/management"
	"petrel/management/store/storetest"
	"petrel/proto/managementpb"
	"petrel/proto/signalpb"
	signalclient "petrel/signal/client"
)

// These tests run two petrel-servers with --ha on one PostgreSQL database
// (PETREL_TEST_POSTGRES_DSN; skipped without it, like every PostgreSQL
// test) and agents' signal streams on different instances.

// sigPeer is one agent's signal client plus what it received.
type sigPeer struct {
	key  keys.Private
	c    *signalclient.Client
	got  chan uint64 // Offer.SessionId of each message received
	errs chan *signalclient.DeliveryError
}

func startHAPair(t *testing.T, ttl time.Duration) (srv1, srv2 *Server, dsn string) {
	t.Helper()
	dsn = storetest.PostgresDSN(t)
	cfg := func() Config {
		c := loopbackConfig(t, t.TempDir())
		c.Store, c.HA = dsn, true
		c.clusterBeat, c.clusterTTL = 100*time.Millisecond, ttl
		return c
	}
	srv1 = start(t, cfg())
	srv2 = start(t, cfg())
	waitFor(t, "the second instance has the account", func() bool { return len(srv2.Management().Accounts()) == 1 })
	return srv1, srv2, dsn
}

// registerPeers logs n new peers in through srv and waits until every
// instance knows them (signal admits only registered keys).
func registerPeers(t *testing.T, n int, srv *Server, all ...*Server) []keys.Private {
	t.Helper()
	ctx := testCtx(t)
	m := srv.Management()
	_, setupKey, err := m.CreateSetupKey(ctx, m.Accounts()[0], management.SetupKeyInput{Name: "t", Reusable: true})
	if err != nil {
		t.Fatal(err)
	}
	var out []keys.Private
	for i := range n {
		k, _ := keys.NewPrivate()
		if _, err := m.Login(ctx, k.Public(), &managementpb.LoginRequest{SetupKey: setupKey, Hostname: "p" + strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
		for _, s := range all {
			waitFor(t, "instance knows the peer", func() bool { return s.Management().IsPeerKey(k.Public()) })
		}
		out = append(out, k)
	}
	return out
}

func connectSignal(t *testing.T, srv *Server, k keys.Private) *sigPeer {
	t.Helper()
	p := &sigPeer{key: k, got: make(chan uint64, 64), errs: make(chan *signalclient.DeliveryError, 64)}
	p.c = signalclient.New(signalclient.Config{Target: strings.TrimPrefix(srv.PublicURL(), "http://"), Key: k, Logger: testLog(t)})
	p.c.SetHandler(func(_ keys.Public, msg *signalpb.PeerMessage) { p.got <- msg.GetOffer().GetSessionId() })
	p.c.OnError(func(err *signalclient.DeliveryError) { p.errs <- err })
	if err := p.c.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.c.Stop)
	waitFor(t, "signal registered", p.c.Connected)
	return p
}

func (p *sigPeer) send(t *testing.T, to *sigPeer, n uint64) {
	t.Helper()
	msg := &signalpb.PeerMessage{Kind: &signalpb.PeerMessage_Offer{Offer: &signalpb.Offer{SessionId: n}}}
	if err := p.c.Send(testCtx(t), to.key.Public(), msg); err != nil {
		t.Fatal(err)
	}
}

// expect waits for message n from `from` at p; a delivery error reported
// to the sender fails the test.
func (p *sigPeer) expect(t *testing.T, from *sigPeer, n uint64) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case got := <-p.got:
		if got != n {
			t.Fatalf("received message %d, want %d", got, n)
		}
	case err := <-from.errs:
		t.Fatalf("waiting for message %d: %v", n, err)
	case <-time.After(deadline):
		t.Fatalf("message %d never arrived", n)
	}
	return time.Since(start)
}

// expectNotConnected waits for the NOT_CONNECTED answer to a message to
// `to`; a delivered message fails the test.
func (p *sigPeer) expectNotConnected(t *testing.T, to *sigPeer) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case err := <-p.errs:
		if !errors.Is(err, signalclient.ErrRecipientNotConnected) || err.To != to.key.Public() {
			t.Fatalf("delivery error %v, want NOT_CONNECTED for %s", err, to.key.Public().Short())
		}
	case <-time.After(deadline):
		t.Fatal("no NOT_CONNECTED answer (silence)")
	}
	return time.Since(start)
}

// TestClusterSignal: peers on different instances reach each other in
// both directions; a peer moving to the other instance stays reachable
// (its old instance's late removal does not delete the new presence); an
// instance that dies without cleaning up yields NOT_CONNECTED, both while
// its heartbeat is fresh (forward fails) and after it aged (presence
// ignored).
func TestClusterSignal(t *testing.T) {
	srv1, srv2, dsn := startHAPair(t, 10*time.Minute)
	srv1.cluster.breakFor.Store(int64(time.Hour)) // the breaker stays open for the test
	ks := registerPeers(t, 3, srv1, srv2)
	a := connectSignal(t, srv1, ks[0])
	b := connectSignal(t, srv2, ks[1])
	c := connectSignal(t, srv2, ks[2])

	a.send(t, b, 1)
	t.Logf("A@1 -> B@2 in %v", b.expect(t, a, 1))
	b.send(t, a, 2)
	t.Logf("B@2 -> A@1 in %v", a.expect(t, b, 2))
	if st := srv1.Signal().Stats(); st.ForwardedOut != 1 || st.ForwardedIn != 1 {
		t.Fatalf("instance 1 forwarded out/in %d/%d, want 1/1", st.ForwardedOut, st.ForwardedIn)
	}

	// B moves to instance 1; then its old stream on instance 2 ends.
	closed := srv2.cluster.stats.closed.Load()
	b2 := connectSignal(t, srv1, ks[1])
	b.c.Stop()
	waitFor(t, "instance 2 removed B's old session", func() bool { return srv2.cluster.stats.closed.Load() > closed })
	c.send(t, b2, 3)
	t.Logf("C@2 -> B@1 after B moved in %v", b2.expect(t, c, 3))
	b2.send(t, c, 4)
	t.Logf("B@1 -> C@2 in %v", c.expect(t, b2, 4))
	a.send(t, b2, 5) // now local on instance 1
	b2.expect(t, a, 5)

	// Instance 2 dies without removing anything (as after kill -9): C's
	// presence row and instance 2's heartbeat stay.
	srv2.cluster.crashed.Store(true)
	id2 := srv2.cluster.id
	srv2.Stop()
	fails := srv1.cluster.stats.failures.Load()
	b2.send(t, c, 6)
	t.Logf("NOT_CONNECTED within the TTL (forward to the dead instance failed) in %v", b2.expectNotConnected(t, c))
	if srv1.cluster.stats.failures.Load() == fails {
		t.Fatal("the answer did not come from a failed forward")
	}
	// The breaker for instance 2 is open: the next envelope for it is
	// answered without a request.
	fails, broken := srv1.cluster.stats.failures.Load(), srv1.cluster.stats.broken.Load()
	b2.send(t, c, 60)
	b2.expectNotConnected(t, c)
	if srv1.cluster.stats.broken.Load() != broken+1 || srv1.cluster.stats.failures.Load() != fails {
		t.Fatalf("second envelope to the dead instance: broken %d→%d, failures %d→%d; want answered by the breaker",
			broken, srv1.cluster.stats.broken.Load(), fails, srv1.cluster.stats.failures.Load())
	}
	// Its heartbeat ages past the TTL: the row is ignored, nothing is sent.
	conn, err := pgx.Connect(testCtx(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(testCtx(t))
	if _, err := conn.Exec(testCtx(t), `UPDATE signal_instances SET heartbeat = now() - interval '1 hour' WHERE instance = $1`, id2); err != nil {
		t.Fatal(err)
	}
	misses := srv1.cluster.stats.misses.Load()
	b2.send(t, c, 7)
	t.Logf("NOT_CONNECTED after the TTL (presence ignored) in %v", b2.expectNotConnected(t, c))
	if srv1.cluster.stats.misses.Load() == misses {
		t.Fatal("the answer did not come from an ignored presence row")
	}
	select {
	case n := <-c.got:
		t.Fatalf("message %d reached a peer of a stopped instance", n)
	default:
	}
}

// TestClusterForwardNeedsMAC: the forwarding endpoint delivers only
// envelopes carrying a valid MAC, under the key derived from the shared
// server key, of a recent timestamp, a nonce, this instance's ID and the
// body; a request is accepted once, and the headers are checked before
// the body is read.
func TestClusterForwardNeedsMAC(t *testing.T) {
	srv1, srv2, _ := startHAPair(t, DefaultClusterTTL)
	ks := registerPeers(t, 2, srv1, srv2)
	b := connectSignal(t, srv1, ks[1])
	env := func(n uint64) []byte {
		pt, _ := proto.Marshal(&signalpb.PeerMessage{Kind: &signalpb.PeerMessage_Offer{Offer: &signalpb.Offer{SessionId: n}}})
		body, err := seal.Seal(pt, b.key.Public(), ks[0])
		if err != nil {
			t.Fatal(err)
		}
		to, from := b.key.Public(), ks[0].Public()
		raw, _ := proto.Marshal(&signalpb.Envelope{To: to[:], From: from[:], Id: n, Body: body})
		return raw
	}
	post := func(raw []byte, h http.Header) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv1.PublicURL()+ForwardPath, bytes.NewReader(raw))
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	good := clusterKey(srv1.Management().ServerKey())
	stranger, _ := keys.NewPrivate()
	id1 := srv1.cluster.id
	nonce := func() string {
		var n [replay.NonceLen]byte
		_, _ = rand.Read(n[:])
		return hex.EncodeToString(n[:])
	}
	signed := func(key []byte, at time.Time, dest string, raw []byte) http.Header {
		h := http.Header{}
		signForward(h, key, at, nonce(), dest, raw)
		return h
	}
	for _, tc := range []struct {
		name    string
		headers func(raw []byte) http.Header
	}{
		{"no headers", func([]byte) http.Header { return http.Header{} }},
		{"no MAC", func(raw []byte) http.Header {
			h := signed(good, time.Now(), id1, raw)
			h.Del(headerMAC)
			return h
		}},
		{"no nonce", func(raw []byte) http.Header {
			h := signed(good, time.Now(), id1, raw)
			h.Del(headerNonce)
			return h
		}},
		{"MAC under another key", func(raw []byte) http.Header { return signed(clusterKey(stranger), time.Now(), id1, raw) }},
		{"MAC of another body", func(raw []byte) http.Header { return signed(good, time.Now(), id1, append([]byte{0}, raw...)) }},
		{"an hour old", func(raw []byte) http.Header { return signed(good, time.Now().Add(-time.Hour), id1, raw) }},
		{"signed for another instance", func(raw []byte) http.Header {
			return signed(good, time.Now(), srv2.cluster.id, raw)
		}},
		{"signed for another instance, claiming this one", func(raw []byte) http.Header {
			h := signed(good, time.Now(), srv2.cluster.id, raw)
			h.Set(headerTo, id1)
			return h
		}},
	} {
		raw := env(9)
		if code := post(raw, tc.headers(raw)); code != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", tc.name, code)
		}
	}
	if n := srv1.cluster.stats.refused.Load(); n != 8 {
		t.Errorf("refused %d forwards, want 8", n)
	}
	// Without headers, an oversized body is refused for the headers (401),
	// not read (400).
	if code := post(make([]byte, forwardMax+1), http.Header{}); code != http.StatusUnauthorized {
		t.Errorf("no headers, oversized body: status %d, want 401", code)
	}
	// A valid forward is delivered once: the refusals above were the
	// checks' doing, and the same request again is a replay.
	raw := env(10)
	h := signed(good, time.Now(), id1, raw)
	if code := post(raw, h); code != http.StatusNoContent {
		t.Fatalf("valid forward: status %d, want 204", code)
	}
	b.expect(t, b, 10)
	if code := post(raw, h); code != http.StatusUnauthorized {
		t.Fatalf("replayed forward: status %d, want 401", code)
	}
	if n := srv1.cluster.stats.replayed.Load(); n != 1 {
		t.Fatalf("replays refused: %d, want 1", n)
	}
	select {
	case n := <-b.got:
		t.Fatalf("a refused forward was delivered too (message %d)", n)
	default:
	}
}

// TestClusterPresenceRetry: a presence write that fails when a stream
// registers is retried on the next heartbeat, and the peer then becomes
// reachable from the other instance.
func TestClusterPresenceRetry(t *testing.T) {
	srv1, srv2, dsn := startHAPair(t, 10*time.Minute)
	ks := registerPeers(t, 2, srv1, srv2)
	a := connectSignal(t, srv1, ks[0])
	srv2.cluster.failPresence.Store(1)
	b := connectSignal(t, srv2, ks[1])
	if n := srv2.cluster.failPresence.Load(); n > 0 {
		t.Fatalf("the presence write did not fail (hook left at %d)", n)
	}
	waitFor(t, "the presence write retried", func() bool { return srv2.cluster.stats.reopened.Load() > 0 })
	conn, err := pgx.Connect(testCtx(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(testCtx(t))
	var inst string
	if err := conn.QueryRow(testCtx(t), `SELECT instance FROM signal_presence WHERE peer_key = $1`, b.key.Public().String()).Scan(&inst); err != nil || inst != srv2.cluster.id {
		t.Fatalf("B's presence row: %q %v, want instance 2", inst, err)
	}
	a.send(t, b, 1)
	b.expect(t, a, 1)
}

// TestClusterStopSkipsClosed: a clean stop removes the instance's
// presence at once, without a removal per session.
func TestClusterStopSkipsClosed(t *testing.T) {
	srv1, srv2, dsn := startHAPair(t, 10*time.Minute)
	ks := registerPeers(t, 2, srv1, srv2)
	connectSignal(t, srv2, ks[0])
	connectSignal(t, srv2, ks[1])
	closed := srv2.cluster.stats.closed.Load()
	srv2.Stop()
	if n := srv2.cluster.stats.closed.Load(); n != closed {
		t.Fatalf("%d per-session removals during the stop, want none", n-closed)
	}
	conn, err := pgx.Connect(testCtx(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(testCtx(t))
	var n int
	if err := conn.QueryRow(testCtx(t), `SELECT count(*) FROM signal_presence WHERE instance = $1`, srv2.cluster.id).Scan(&n); err != nil || n != 0 {
		t.Fatalf("presence rows of the stopped instance: %d %v", n, err)
	}
}

// TestClusterRefusalLog: refused forwards are logged at most once per
// interval, the next warning counting those not logged.
func TestClusterRefusalLog(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	k, _ := keys.NewPrivate()
	c, err := newCluster(nil, k, "http://127.0.0.1:1", "", time.Second, time.Second, log)
	if err != nil {
		t.Fatal(err)
	}
	c.logEvery = time.Hour
	refuse := func() {
		req := httptest.NewRequest(http.MethodPost, ForwardPath, nil)
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", rec.Code)
		}
	}
	for range 5 {
		refuse()
	}
	if n := strings.Count(buf.String(), "refused a forwarded"); n != 1 {
		t.Fatalf("%d warnings for 5 refusals within the interval, want 1:\n%s", n, buf.String())
	}
	c.logMu.Lock()
	c.logEvery = 0
	c.logMu.Unlock()
	refuse()
	if out := buf.String(); strings.Count(out, "refused a forwarded") != 2 || !strings.Contains(out, "refused_since_last_warning=4") {
		t.Fatalf("after the interval: want a second warning counting 4 unlogged:\n%s", out)
	}
}
