package lab

import (
	"context"
	"net"
	"net/netip"
	"testing"
)

// The query log records each query with its name, type, client and rcode.
func TestRecordsQueryLog(t *testing.T) {
	r := NewRecords()
	r.Set("a.lab.test", netip.MustParseAddr("192.0.2.1"))
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop, err := ServeDNSOn(pc, nil, r)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	server := netip.MustParseAddrPort(pc.LocalAddr().String())
	ctx := context.Background()
	if got, err := Query(ctx, nil, server, "A.lab.test"); err != nil || len(got) != 1 {
		t.Fatalf("query a.lab.test: %v %v", got, err)
	}
	if _, err := Query(ctx, nil, server, "missing.lab.test"); err == nil {
		t.Fatal("missing.lab.test resolved")
	}
	q := r.Queries("a.lab.test")
	if len(q) != 1 || q[0].Name != "a.lab.test." || q[0].Type != "A" || q[0].Rcode != "NOERROR" ||
		q[0].From.Addr() != netip.MustParseAddr("127.0.0.1") || q[0].From.Port() == 0 {
		t.Fatalf("log for a.lab.test: %+v", q)
	}
	if q := r.Queries("missing.lab.test."); len(q) != 1 || q[0].Rcode != "NXDOMAIN" {
		t.Fatalf("log for missing.lab.test: %+v", q)
	}
	if n := len(r.Queries("")); n != 2 {
		t.Fatalf("whole log has %d entries, want 2", n)
	}
}
