//go:build lab

package lab_test

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"

	"petrel/lab"
)

// EnableIPv6: a NAT host reaches a bridge host over IPv6 (routed, no NAT66:
// the bridge host sees the LAN address), while the bridge host cannot open
// a connection to the NAT host (the router's forward policy).
func TestEnableIPv6(t *testing.T) {
	l := lab.NewT(t, lab.Options{})
	web, err := l.AddServerHost("web", netip.MustParseAddr("203.0.113.80"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := l.AddNATHost("a", lab.EIM)
	if err != nil {
		t.Fatal(err)
	}
	web6, err := web.EnableIPv6()
	if err != nil {
		t.Fatal(err)
	}
	a6, err := a.EnableIPv6()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.EnableIPv6(); err != nil { // idempotent
		t.Fatal(err)
	}
	if web6.String() != "2001:db8:ff::80" || a6.String() != "2001:db8:1::2" {
		t.Fatalf("addresses web %s a %s", web6, a6)
	}
	ctx := context.Background()
	if out, err := a.Run(ctx, "ping", "-6", "-n", "-c", "1", "-W", "2", web6.String()); err != nil {
		t.Fatalf("a -> web over IPv6: %v\n%s", err, out)
	}
	var ln net.Listener
	if err := web.Do(func() error {
		var err error
		ln, err = net.Listen("tcp6", "["+web6.String()+"]:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(c.RemoteAddr().String()))
			c.Close()
		}
	}()
	c, err := a.DialContext(ctx, "tcp6", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, _ := c.Read(buf)
	c.Close()
	if !strings.Contains(string(buf[:n]), a6.String()) {
		t.Errorf("web saw %q, want a's LAN address %s", buf[:n], a6)
	}
	if out, err := web.Run(ctx, "ping", "-6", "-n", "-c", "1", "-W", "1", a6.String()); err == nil {
		t.Errorf("web reached a behind its router unsolicited:\n%s", out)
	}
}
