//go:build lab

package lab_test

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"petrel/lab"
)

// prefixed lists netns names, root-namespace links and /etc/netns entries
// that contain s.
func prefixed(t *testing.T, s string) []string {
	t.Helper()
	var found []string
	for _, argv := range [][]string{{"ip", "netns", "list"}, {"ip", "-o", "link", "show"}} {
		out, err := exec.Command(argv[0], argv[1:]...).Output()
		if err != nil {
			t.Fatalf("%v: %v", argv, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, s) {
				found = append(found, argv[1]+": "+line)
			}
		}
	}
	if des, err := os.ReadDir("/etc/netns"); err == nil {
		for _, de := range des {
			if strings.Contains(de.Name(), s) {
				found = append(found, "/etc/netns/"+de.Name())
			}
		}
	}
	return found
}

func TestTopologyUpDownLeavesNothing(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	l, err := lab.New(lab.Options{})
	if err != nil {
		t.Skipf("lab test skipped: %v", err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			l.Close()
		}
	})
	p := l.Prefix()
	if got := prefixed(t, p); len(got) != 0 {
		t.Fatalf("fresh prefix %s already in use: %v", p, got)
	}
	cp, err := l.AddControlPlane()
	if err != nil {
		t.Fatal(err)
	}
	a, err := l.AddNATHost("a", lab.EIM)
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.AddNATHost("b", lab.Symmetric)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, h := range []*lab.Host{a, b} {
		if _, err := h.Run(ctx, "ping", "-c", "1", "-W", "5", cp.Server.Addr.String()); err != nil {
			t.Fatalf("ping server from %s: %v", h.Name, err)
		}
	}
	// TCP from behind each NAT to every control-plane host, through sockets
	// opened inside the namespaces; the server side sees the NAT's address.
	for _, srv := range append([]*lab.Host{cp.Server}, cp.Relays...) {
		ln, err := srv.ListenTCP(srv.Addr.String() + ":8080")
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range []*lab.Host{a, b} {
			c, err := h.DialContext(ctx, "tcp", srv.Addr.String()+":8080")
			if err != nil {
				t.Fatal(err)
			}
			sc, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			if got := sc.RemoteAddr().(*net.TCPAddr).IP.String(); got != h.PublicAddr.String() {
				t.Errorf("%s sees %s's connection from %s, want NAT address %s", srv.Name, h.Name, got, h.PublicAddr)
			}
			sc.Close()
			c.Close()
		}
		ln.Close()
	}
	// Hosts behind different NATs cannot reach each other's private address.
	if _, err := a.Run(ctx, "ping", "-c", "1", "-W", "1", b.Addr.String()); err == nil {
		t.Fatalf("%s reached %s's private address", a.Name, b.Name)
	}
	// A tracked process must be stopped by Close.
	if _, err := a.Start(ctx, "sleep", "600"); err != nil {
		t.Fatal(err)
	}
	nsCount := 0
	for _, f := range prefixed(t, p) {
		if strings.HasPrefix(f, "netns:") {
			nsCount++
		}
		if strings.HasPrefix(f, "-o:") {
			t.Errorf("link created in the machine's namespace: %s", f)
		}
	}
	// inet, server, eu-1, us-1, dns, a, a-nat, b, b-nat
	if nsCount != 9 {
		t.Errorf("namespaces with prefix %s: %d, want 9 (%v)", p, nsCount, prefixed(t, p))
	}
	if err := l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	closed = true
	if err := l.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if got := prefixed(t, p); len(got) != 0 {
		t.Fatalf("left behind after Close: %v", got)
	}
	if _, err := os.Stat(lab.DefaultJournalDir + "/" + p + ".json"); !os.IsNotExist(err) {
		t.Fatalf("journal left behind: %v", err)
	}
}

func TestAddressConflictsRejected(t *testing.T) {
	l := lab.NewT(t, lab.Options{})
	if _, err := l.AddServerHost("one", lab.ServerAddr); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AddServerHost("two", lab.ServerAddr); err == nil {
		t.Fatal("second host with the same bridge address accepted")
	}
	if _, err := l.AddServerHost("gw", lab.InternetGateway); err == nil {
		t.Fatal("host on the gateway address accepted")
	}
	if _, err := l.AddServerHost("one", netip.MustParseAddr("203.0.113.12")); err == nil {
		t.Fatal("duplicate host name accepted")
	}
	if _, err := l.AddServerHost("Bad_Name", netip.MustParseAddr("203.0.113.13")); err == nil {
		t.Fatal("invalid host name accepted")
	}
	// A NAT router takes the next WAN address; a server there is refused.
	h, err := l.AddNATHost("n", lab.EIM)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.AddServerHost("clash", h.PublicAddr); err == nil {
		t.Fatalf("server on NAT WAN address %s accepted", h.PublicAddr)
	}
}
