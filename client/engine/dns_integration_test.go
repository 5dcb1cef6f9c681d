package engine_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"golang.org/x/net/proxy"
)

// Peer names resolve through the agent's resolver, and a SOCKS5 client
// that sends names (curl --socks5-hostname) reaches a peer by name.
func TestDNSPeerNamesAndSOCKSHostname(t *testing.T) {
	m := newMesh(t)
	a, b := m.addAgent("a"), m.addAgent("b")
	bip := overlayIP(t, b)
	waitFor(t, "b.petrel.internal in a's local zone", 30*time.Second, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		ans, err := a.DNSQuery(ctx, "b.petrel.internal", mdns.TypeA)
		if err != nil {
			return false, err.Error()
		}
		return ans.Handler == "local-zone" && slices.ContainsFunc(ans.Records, func(r string) bool {
			return strings.Contains(r, bip.String())
		}), fmt.Sprintf("%+v", ans)
	})
	if d := a.DNSStatus(); d.Resolver == nil || len(d.Resolver.Listeners) == 0 {
		t.Fatalf("resolver status %+v", d)
	}

	ln, err := b.Netstack().ListenTCP(&net.TCPAddr{IP: bip.AsSlice(), Port: 8088})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, _ = c.Write([]byte("hello from b"))
			c.Close()
		}
	}()
	d, err := proxy.SOCKS5("tcp", a.Status().Socks5Addr, nil, proxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.Dial("tcp", "b.petrel.internal:8088") // the name goes to the proxy
	if err != nil {
		t.Fatalf("SOCKS5 dial by name: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "hello from b" {
		t.Fatalf("read %q, %v", got, err)
	}
}
