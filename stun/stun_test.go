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

func TestRespondIgnoresNonBinding(t *testing.T) {
	from := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	var resp pstun.Message
	ind := pstun.MustBuild(pstun.TransactionID, pstun.NewType(pstun.MethodBinding, pstun.ClassIndication))
	succ := pstun.MustBuild(pstun.TransactionID, pstun.BindingSuccess)
	for name, b := range map[string][]byte{"indication": ind.Raw, "success": succ.Raw, "empty": nil, "truncated": ind.Raw[:19]} {
		if out := Respond(&resp, b, from); out != nil {
			t.Errorf("%s answered", name)
		}
	}
}

func FuzzRespond(f *testing.F) {
	f.Add(pstun.MustBuild(pstun.TransactionID, pstun.BindingRequest).Raw)
	f.Add(pstun.MustBuild(pstun.TransactionID, pstun.BindingRequest, pstun.NewSoftware("x"), pstun.Fingerprint).Raw)
	f.Add([]byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42})
	from := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3478}
	f.Fuzz(func(t *testing.T, b []byte) {
		var resp pstun.Message
		out := Respond(&resp, b, from)
		if out == nil {
			return
		}
		m := pstun.Message{Raw: append([]byte(nil), out...)}
		if err := m.Decode(); err != nil || m.Type != pstun.BindingSuccess {
			t.Fatalf("bad response: %v", err)
		}
	})
}
