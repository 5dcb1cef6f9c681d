package lab

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// ignoreHarness skips the signal watcher lab.RunTests starts in TestMain
// (with build tag lab).
var ignoreHarness = goleak.IgnoreTopFunction("petrel/lab.TeardownOnSignal.func1")

func TestParseNATKind(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want NATKind
		ok   bool
	}{{"eim", EIM, true}, {"EIM", EIM, true}, {"symmetric", Symmetric, true}, {"sym", Symmetric, true}, {"full-cone", 0, false}, {"", 0, false}} {
		got, err := ParseNATKind(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseNATKind(%q) = %v, %v", tc.in, got, err)
		}
		if back, err := ParseNATKind(got.String()); tc.ok && (err != nil || back != got) {
			t.Errorf("String() %q does not parse back", got.String())
		}
	}
}

func TestNATRuleset(t *testing.T) {
	eim := natRuleset("L", "W", "masquerade")
	sym := natRuleset("L", "W", "masquerade random")
	if !strings.Contains(eim, `oifname "W" masquerade`+"\n") || !strings.Contains(sym, `oifname "W" masquerade random`) {
		t.Fatalf("masquerade rule missing:\n%s\n%s", eim, sym)
	}
	for _, want := range []string{`iifname "L" oifname "W" accept`, `iifname "W" drop`, "policy drop"} {
		if !strings.Contains(eim, want) {
			t.Errorf("ruleset lacks %q", want)
		}
	}
}

func TestPrefixAndNames(t *testing.T) {
	for _, tc := range []struct {
		ns string
		ok bool
	}{{"pl1a2b-inet", true}, {"pl1a2b-a-nat", true}, {"pl1a2-x", false}, {"p1a2b-x", false}, {"pl1a2b-../x", false}, {"eth0", false}} {
		if got := validNSName(tc.ns); got != tc.ok {
			t.Errorf("validNSName(%q) = %v", tc.ns, got)
		}
	}
	// Longest interface name: prefix + "-" + "b" + 3 digits.
	if n := len("pl1a2b-b150"); n > 15 {
		t.Fatalf("interface name too long: %d", n)
	}
}

func TestProcStart(t *testing.T) {
	self := journalProc{PID: os.Getpid(), Start: procStart(os.Getpid())}
	if self.Start == 0 || !self.alive() {
		t.Fatalf("own start time %d alive=%v", self.Start, self.alive())
	}
	if (journalProc{PID: self.PID, Start: self.Start + 1}).alive() {
		t.Fatal("a reused PID (different start time) counted as alive")
	}
	if (journalProc{PID: 1 << 30}).alive() {
		t.Fatal("absent PID counted as alive")
	}
}

func TestDNSRecordsOnLoopback(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(), ignoreHarness)
	r := StandardRecords()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop, err := ServeDNSOn(pc, nil, r)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	srv := netip.MustParseAddrPort(pc.LocalAddr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name string
		want []netip.Addr
		err  string
	}{
		{"MGMT.lab.test", []netip.Addr{ServerAddr}, ""},
		{"relay.lab.test.", []netip.Addr{RelayEUAddr, RelayUSAddr}, ""},
		{"eu-1.relay.lab.test", []netip.Addr{RelayEUAddr}, ""},
		{"nope.lab.test", nil, "NXDOMAIN"},
		{"example.com", nil, "REFUSED"},
	} {
		got, err := Query(ctx, nil, srv, tc.name)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %s", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Fatalf("%s: %v, %v", tc.name, got, err)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
			}
		}
	}
	r.Set(RelayEU)
	if _, err := Query(ctx, nil, srv, RelayEU); err == nil {
		t.Fatal("deleted record still answered")
	}
}

func TestReflectAndProbeOnLoopback(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(), ignoreHarness)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- ReflectUDP(ctx, pc) }()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pctx, pcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer pcancel()
	got, err := ProbeUDP(pctx, c, netip.MustParseAddrPort(pc.LocalAddr().String()))
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != c.LocalAddr().String() {
		t.Fatalf("reflected %s, want %s", got, c.LocalAddr())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("reflector: %v", err)
	}
}
