package client

import (
	"bytes"
	"context"
	"errors"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"petrel/internal/keys"
	"petrel/relay"
	"petrel/relay/auth"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var secret = bytes.Repeat([]byte{9}, auth.SecretLen)

func startRelay(t testing.TB) (*relay.Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "rel://" + ln.Addr().String()
	s, err := relay.NewServer(relay.Config{InstanceURL: url, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.StartOn(ln); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s, url
}

func key(t testing.TB) keys.Public {
	k, err := keys.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	return k.Public()
}

func newClient(t testing.TB, pub keys.Public, tokens *atomic.Int64, mod func(*Config), urls ...string) *Client {
	t.Helper()
	cfg := Config{URLs: urls, Key: pub, Token: func() string {
		if tokens != nil {
			tokens.Add(1)
		}
		return auth.Mint(secret, pub, time.Now().Add(time.Hour))
	}}
	if mod != nil {
		mod(&cfg)
	}
	c := New(cfg)
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWSURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"rel://eu-1.relay.lab.test:8080", "ws://eu-1.relay.lab.test:8080/relay"},
		{"rels://relay.example.net", "wss://relay.example.net/relay"},
		{"rels://relay.example.net/custom", "wss://relay.example.net/custom"},
		{"ws://x:1", ""},
		{"rel://", ""},
		{"::", ""},
	}
	for _, tt := range tests {
		got, err := wsURL(tt.in)
		if (err != nil) != (tt.want == "") || got != tt.want {
			t.Errorf("wsURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestStartValidatesAndStopIsIdempotent(t *testing.T) {
	pub := key(t)
	bad := New(Config{URLs: []string{"http://x"}, Key: pub, Token: func() string { return "t" }})
	if err := bad.Start(context.Background()); err == nil {
		t.Fatal("bad URL accepted")
	}
	bad.Stop()
	_, url := startRelay(t)
	c := newClient(t, pub, nil, nil, url)
	if err := c.Start(context.Background()); err == nil {
		t.Fatal("second Start accepted")
	}
	waitFor(t, "connected", c.Connected)
	if err := c.Send(pub, "", make([]byte, 70000)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized send: %v", err)
	}
	c.Stop()
	c.Stop()
	if c.Connected() || c.HomeURL() != "" {
		t.Fatal("still connected after Stop")
	}
	if err := c.Send(pub, "", []byte("x")); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("send after stop: %v", err)
	}
	if err := c.Send(pub, "rel://127.0.0.1:1", []byte("x")); !errors.Is(err, ErrStopped) {
		t.Fatalf("foreign send after stop: %v", err)
	}
}

func TestHomeFallsThroughURLList(t *testing.T) {
	// The first URL refuses connections; the second is a live relay.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "rel://" + dead.Addr().String()
	dead.Close()
	_, url := startRelay(t)
	c := newClient(t, key(t), nil, nil, deadURL, url)
	waitFor(t, "connected", c.Connected)
	if c.HomeURL() != url {
		t.Fatalf("home %q want %q", c.HomeURL(), url)
	}
}

func TestRefusedTokenRetriesWithFreshToken(t *testing.T) {
	_, url := startRelay(t)
	pub := key(t)
	var calls atomic.Int64
	c := newClient(t, pub, nil, func(cfg *Config) {
		cfg.Token = func() string {
			if calls.Add(1) == 1 {
				return auth.Mint(secret, pub, time.Now().Add(-time.Hour)) // expired
			}
			return auth.Mint(secret, pub, time.Now().Add(time.Hour))
		}
	}, url)
	waitFor(t, "connected with the re-issued token", c.Connected)
	if calls.Load() < 2 {
		t.Fatalf("token asked %d times", calls.Load())
	}
}

func TestForeignConnectionClosesWhenIdle(t *testing.T) {
	s1, url1 := startRelay(t)
	s2, url2 := startRelay(t)
	var tokens atomic.Int64
	aPub, bPub := key(t), key(t)
	a := newClient(t, aPub, &tokens, func(c *Config) { c.ForeignIdleTimeout = 300 * time.Millisecond }, url1)
	b := newClient(t, bPub, nil, nil, url2)
	got := make(chan string, 16)
	b.SetReceiver(func(src keys.Public, inst string, pkt []byte) {
		if src == aPub && inst == url2 {
			select {
			case got <- string(pkt):
			default:
			}
		}
	})
	waitFor(t, "connected", func() bool { return a.Connected() && b.Connected() })
	waitFor(t, "foreign delivery", func() bool {
		a.Send(bPub, url2, []byte("hi"))
		select {
		case <-got:
			return true
		case <-time.After(50 * time.Millisecond):
			return false
		}
	})
	if s2.Stats().Conns != 2 {
		t.Fatalf("instance 2 has %d conns, want 2", s2.Stats().Conns)
	}
	if tokens.Load() < 2 {
		t.Fatalf("token asked %d times for home + foreign", tokens.Load())
	}
	waitFor(t, "idle foreign connection closed", func() bool {
		a.fmu.Lock()
		n := len(a.foreign)
		a.fmu.Unlock()
		return n == 0 && s2.Stats().Conns == 1
	})
	if s1.Stats().Conns != 1 || !a.Connected() {
		t.Fatal("home connection affected")
	}
}

// BenchmarkRelayPair measures relayed throughput of 1280-byte packets
// between two clients through one relay over loopback, with a bounded
// window so no queue drops.
func BenchmarkRelayPair(b *testing.B) { benchRelayPair(b, 1) }

// BenchmarkRelayPairBatch is BenchmarkRelayPair with SendBatch of 32
// packets, as WireGuard's Bind hands them.
func BenchmarkRelayPairBatch(b *testing.B) { benchRelayPair(b, 32) }

// benchRelayPair sends batches of batch packets (Send when 1, SendBatch
// otherwise) with at most window packets in flight.
func benchRelayPair(b *testing.B, batch int) {
	_, url := startRelay(b)
	aPub, bPub := key(b), key(b)
	a := newClient(b, aPub, nil, nil, url)
	rx := newClient(b, bPub, nil, nil, url)
	var received atomic.Int64
	wake := make(chan struct{}, 1)
	rx.SetReceiver(func(keys.Public, string, []byte) {
		received.Add(1)
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	waitFor(b, "connected", func() bool { return a.Connected() && rx.Connected() })
	const window = 256
	pkts := make([][]byte, batch)
	for i := range pkts {
		pkts[i] = make([]byte, 1280)
	}
	send := func() error { return a.SendBatch(bPub, "", pkts) }
	if batch == 1 {
		send = func() error { return a.Send(bPub, "", pkts[0]) }
	}
	b.SetBytes(int64(1280 * batch))
	b.ReportAllocs()
	b.ResetTimer()
	sent := int64(0)
	for range b.N {
		for sent-received.Load() > int64(window-batch) {
			<-wake
		}
		for send() != nil {
			runtime.Gosched()
		}
		sent += int64(batch)
	}
	for received.Load() < sent {
		<-wake
	}
}

func BenchmarkSendEnqueue(b *testing.B) {
	_, url := startRelay(b)
	a := newClient(b, key(b), nil, nil, url)
	waitFor(b, "connected", a.Connected)
	dst := key(b)
	pkt := make([]byte, 1280)
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		for a.Send(dst, "", pkt) != nil {
			runtime.Gosched()
		}
	}
}

func TestSendBatchDeliversAll(t *testing.T) {
	_, url := startRelay(t)
	aPub, bPub := key(t), key(t)
	a := newClient(t, aPub, nil, nil, url)
	b := newClient(t, bPub, nil, nil, url)
	got := make(chan byte, 256)
	b.SetReceiver(func(src keys.Public, _ string, pkt []byte) {
		if src == aPub && len(pkt) == 1200 {
			got <- pkt[0]
		}
	})
	waitFor(t, "connected", func() bool { return a.Connected() && b.Connected() })
	// Make sure B is registered before the batch (its first packets could
	// otherwise race its registration).
	waitFor(t, "probe", func() bool {
		a.Send(bPub, "", make([]byte, 1200))
		select {
		case <-got:
			return true
		case <-time.After(50 * time.Millisecond):
			return false
		}
	})
	for len(got) > 0 {
		<-got
	}
	pkts := make([][]byte, 100)
	for i := range pkts {
		pkts[i] = bytes.Repeat([]byte{byte(i + 1)}, 1200)
	}
	if err := a.SendBatch(bPub, "", pkts); err != nil {
		t.Fatal(err)
	}
	seen := make(map[byte]bool)
	timeout := time.After(30 * time.Second)
	for len(seen) < len(pkts) {
		select {
		case v := <-got:
			if v != 0 {
				seen[v] = true
			}
		case <-timeout:
			t.Fatalf("received %d of %d", len(seen), len(pkts))
		}
	}
}

func TestForeignDialFailureBacksOff(t *testing.T) {
	_, url := startRelay(t)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "rel://" + dead.Addr().String()
	dead.Close()
	c := newClient(t, key(t), nil, nil, url)
	waitFor(t, "connected", c.Connected)
	dst := key(t)
	// The first Send starts the dial and queues; once it failed, Sends are
	// refused until the backoff passes instead of redialing every packet.
	if err := c.Send(dst, deadURL, []byte("x")); err != nil {
		t.Fatalf("first send: %v", err)
	}
	waitFor(t, "dial failure noticed", func() bool {
		return errors.Is(c.Send(dst, deadURL, []byte("x")), ErrNotConnected)
	})
	if !c.Connected() {
		t.Fatal("home connection affected")
	}
}
