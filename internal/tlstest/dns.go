package tlstest

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// StartDNS serves A records for names (case-insensitive, without the final
// dot) over UDP and TCP on one loopback port and returns its address. AAAA
// questions for those names get an empty answer; other names NXDOMAIN.
func StartDNS(t testing.TB, names map[string]netip.Addr) string {
	t.Helper()
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		if len(q.Question) != 1 {
			m.Rcode = dns.RcodeFormatError
			_ = w.WriteMsg(m)
			return
		}
		qq := q.Question[0]
		ip, ok := names[strings.ToLower(strings.TrimSuffix(qq.Name, "."))]
		switch {
		case !ok:
			m.Rcode = dns.RcodeNameError
		case qq.Qtype == dns.TypeA && ip.Is4():
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5},
				A: ip.AsSlice()})
		}
		_ = w.WriteMsg(m)
	})
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			continue // the TCP port is taken: try another
		}
		udp, tcp := &dns.Server{PacketConn: pc, Handler: h}, &dns.Server{Listener: ln, Handler: h}
		for _, s := range []*dns.Server{udp, tcp} {
			started := make(chan struct{})
			s.NotifyStartedFunc = func() { close(started) }
			go func() { _ = s.ActivateAndServe() }()
			<-started
			t.Cleanup(func() { _ = s.Shutdown() })
		}
		return pc.LocalAddr().String()
	}
	t.Fatal("no free port for the test DNS server")
	return ""
}

// UseResolver sends the test process's own name lookups (net.Dialer,
// net/http, grpc-go) to the DNS server at addr until the test ends. The
// hosts file is still read first. Tests that use it must not run in
// parallel with others.
func UseResolver(t testing.TB, addr string) {
	t.Helper()
	old := net.DefaultResolver
	net.DefaultResolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	t.Cleanup(func() { net.DefaultResolver = old })
}
