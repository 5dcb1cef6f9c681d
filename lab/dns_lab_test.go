//go:build lab

package lab_test

import (
	"context"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"petrel/lab"
)

func TestLabDNSFromHostNamespace(t *testing.T) {
	l := lab.NewT(t, lab.Options{})
	cp, err := l.AddControlPlane()
	if err != nil {
		t.Fatal(err)
	}
	h, err := l.AddNATHost("h", lab.Symmetric)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	want := map[string][]string{
		lab.MgmtName:      {lab.ServerAddr.String()},
		lab.StunName:      {lab.ServerAddr.String()},
		lab.RelayPoolName: {lab.RelayEUAddr.String(), lab.RelayUSAddr.String()},
		lab.RelayEU:       {lab.RelayEUAddr.String()},
		lab.RelayUS:       {lab.RelayUSAddr.String()},
	}
	// The resolv.conf bind mount must be in effect for processes.
	rc, err := h.Run(ctx, "cat", "/etc/resolv.conf")
	if err != nil || !strings.Contains(rc, "nameserver "+lab.DNSAddr.String()) {
		t.Fatalf("resolv.conf inside %s: %q, %v", h.NS, rc, err)
	}
	bin := needBin(t)
	_, haveDig := exec.LookPath("dig")
	for name, ips := range want {
		// libc resolver through /etc/netns/<ns>/resolv.conf.
		out, err := h.Run(ctx, "getent", "ahostsv4", name)
		if err != nil {
			t.Fatalf("getent %s: %v", name, err)
		}
		if got := uniqueFirstFields(out); !slices.Equal(got, ips) {
			t.Errorf("getent %s = %v, want %v", name, got, ips)
		}
		// The CLI helper, run inside the namespace.
		out, err = h.Run(ctx, bin, "dns-query", name)
		if err != nil {
			t.Fatalf("lab dns-query %s: %v", name, err)
		}
		if got := uniqueFirstFields(out); !slices.Equal(got, ips) {
			t.Errorf("lab dns-query %s = %v, want %v", name, got, ips)
		}
		if haveDig == nil {
			out, err = h.Run(ctx, "dig", "+short", "+tries=3", name, "A")
			if err != nil {
				t.Fatalf("dig %s: %v", name, err)
			}
			if got := uniqueFirstFields(out); !slices.Equal(got, ips) {
				t.Errorf("dig %s = %v, want %v", name, got, ips)
			}
		}
	}
	if out, err := h.Run(ctx, "getent", "hosts", "nope.lab.test"); err == nil {
		t.Errorf("unknown lab name resolved: %q", out)
	}
	// The standalone helper `lab dns-serve`, run inside a bridge host.
	alt, err := l.AddServerHost("altdns", netip.MustParseAddr("203.0.113.54"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alt.Start(ctx, bin, "dns-serve", "--listen", "203.0.113.54:53",
		"--record", "x.lab.test=203.0.113.77,203.0.113.78"); err != nil {
		t.Fatal(err)
	}
	for {
		out, err := h.Run(ctx, bin, "dns-query", "--server", "203.0.113.54:53", "x.lab.test")
		if err == nil {
			if got := uniqueFirstFields(out); !slices.Equal(got, []string{"203.0.113.77", "203.0.113.78"}) {
				t.Fatalf("lab dns-serve answered %v", got)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("lab dns-serve never answered: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Records change live.
	cp.DNS.Records.Set(lab.RelayUS, netip.MustParseAddr("203.0.113.23"))
	got, err := lab.Query(ctx, h, cp.DNS.Addr, lab.RelayUS)
	if err != nil || len(got) != 1 || got[0].String() != "203.0.113.23" {
		t.Fatalf("after update: %v, %v", got, err)
	}
}

func uniqueFirstFields(out string) []string {
	var r []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && !slices.Contains(r, f[0]) {
			r = append(r, f[0])
		}
	}
	slices.Sort(r)
	return r
}
