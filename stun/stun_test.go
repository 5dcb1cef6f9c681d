package stun

import (
	"net"
	"testing"
	"time"

	pstun "github.com/pion/stun/v4"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestBindingOverLoopback(t *testing.T) {
	s := NewServer("127.0.0.1:0", nil)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv := s.Addr().(*net.UDPAddr)

	// Garbage first: no answer, server keeps running.
	for _, junk := range [][]byte{{0xff}, make([]byte, 20), []byte("GET / HTTP/1.1\r\n\r\n")} {
		if _, err := c.WriteToUDP(junk, srv); err != nil {
			t.Fatal(err)
		}
	}
	req := pstun.MustBuild(pstun.TransactionID, pstun.BindingRequest, pstun.Fingerprint)
	buf := make([]byte, 1500)
	var resp pstun.Message
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := c.WriteToUDP(req.Raw, srv); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, _, err := c.ReadFromUDP(buf)
		if err == nil {
			resp = pstun.Message{Raw: append([]byte(nil), buf[:n]...)}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no STUN response")
		}
	}
	if err := resp.Decode(); err != nil {
		t.Fatal(err)
	}
	if resp.Type != pstun.BindingSuccess || resp.TransactionID != req.TransactionID {
		t.Fatalf("response %v txid match %v", resp.Type, resp.TransactionID == req.TransactionID)
	}
	var xa pstun.XORMappedAddress
	if err := xa.GetFrom(&resp); err != nil {
		t.Fatal(err)
	}
	me := c.LocalAddr().(*net.UDPAddr)
	if !xa.IP.Equal(me.IP) || xa.Port != me.Port {
		t.Fatalf("mapped %v, want %v", xa, me)
	}
	if err := pstun.Fingerprint.Check(&resp); err != nil {
		t.Fatalf("fingerprint: %v", err)
	}
	s.Stop()
	s.Stop()
}

// TestRateLimitPerSource floods the server from one source with a frozen
// clock (no refill): exactly Burst requests are answered, the rest are
// dropped silently, and another source is still answered.
func TestRateLimitPerSource(t *testing.T) {
	frozen := time.Unix(1_700_000_000, 0)
	s := New(Config{Addr: "127.0.0.1:0", Rate: 1, Burst: 5, Now: func() time.Time { return frozen }})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	srv := s.Addr().(*net.UDPAddr)

	flood, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer flood.Close()
	const sent = 40
	for range sent {
		req := pstun.MustBuild(pstun.TransactionID, pstun.BindingRequest)
		if _, err := flood.WriteToUDP(req.Raw, srv); err != nil {
			t.Fatal(err)
		}
	}
	// Every request is either answered or counted as limited.
	deadline := time.Now().Add(30 * time.Second)
	for st := s.Stats(); st.Answered+st.RateLimited < sent; st = s.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("server saw %d of %d requests", st.Answered+st.RateLimited, sent)
		}
		time.Sleep(5 * time.Millisecond)
	}
	answers := 0
	buf := make([]byte, 1500)
	for {
		flood.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, _, err := flood.ReadFromUDP(buf); err != nil {
			break
		}
		answers++
	}
	if st := s.Stats(); answers != 5 || st.RateLimited != sent-5 {
		t.Fatalf("flooding source got %d answers (stats %+v), want burst 5 and %d dropped", answers, st, sent-5)
	}

	// A different source has its own bucket.
	other, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	req := pstun.MustBuild(pstun.TransactionID, pstun.BindingRequest)
	if _, err := other.WriteToUDP(req.Raw, srv); err != nil {
		t.Fatal(err)
	}
	other.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := other.ReadFromUDP(buf); err != nil {
		t.Fatalf("second source not answered: %v", err)
	}
}

// TestSourceTableBounded sends from far more source addresses than the
// table holds; it never grows past MaxSources.
func TestSourceTableBounded(t *testing.T) {
	s := New(Config{Addr: "127.0.0.1:0", MaxSources: 64})
	req := pstun.MustBuild(pstun.TransactionID, pstun.BindingRequest).Raw
	var resp pstun.Message
	for i := range 5000 {
		from := &net.UDPAddr{IP: net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)), Port: 1}
		if s.answer(&resp, req, from) == nil {
			t.Fatalf("fresh source %v not answered", from)
		}
		if n := s.limit.Len(); n > 64 {
			t.Fatalf("source table holds %d entries, bound 64", n)
		}
	}
}
