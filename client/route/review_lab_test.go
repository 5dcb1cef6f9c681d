//go:build lab

package route

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// syncBuf is a log sink shared with the drift goroutine.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// managerWith is l.manager with extra options and the log also in buf.
func (l *lab) managerWith(buf io.Writer, opt ...option) (*Manager, *fileJournal) {
	j := &fileJournal{path: filepath.Join(l.t.TempDir(), "journal")}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{l.t}, buf), &slog.HandlerOptions{Level: slog.LevelDebug}))
	opt = append([]option{func(o *options) {
		o.nsPath = l.path
		o.driftInterval = 100 * time.Millisecond
	}}, opt...)
	return newManager(log, j, opt...), j
}

// TestLabRefusedRouteJournaledOnce: an Apply that retries a refused route
// five times journals it once, and nothing else again.
func TestLabRefusedRouteJournaledOnce(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	l := newLab(t)
	if out, err := l.exec("sysctl", "-w", "net.ipv6.conf.ptun0.disable_ipv6=1"); err != nil {
		t.Fatalf("disable IPv6: %v %s", err, out)
	}
	m, j := l.manager()
	v6 := mp("2001:db8:77::/48")
	cfg := Config{Interface: "ptun0", Routes: []netip.Prefix{mp("10.77.0.0/16"), v6}}
	for i := range 5 {
		if res, err := m.Apply(cfg); err != nil || res.Failed[v6] == nil {
			t.Fatalf("Apply %d = %+v, %v; want %s refused", i, res, err, v6)
		}
	}
	n := 0
	for _, e := range j.entries(t) {
		if e.Kind == KindRoute && e.Data["dst"] == v6.String() {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the refused route was journaled %d times over 5 Applies, want 1", n)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestLabSysctlChangedByOthers: a forwarding value someone else set after
// ours survives Close and the journal's undo.
func TestLabSysctlChangedByOthers(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	l := newLab(t)
	m, j := l.manager()
	cfg := Config{Interface: "ptun0", Serve: []Serve{{Network: mp("192.0.2.0/24"), Sources: []netip.Prefix{mp("100.64.0.7/32")}}}}
	if _, err := m.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if v := l.sysctl(sysctlForward4); v != "1" {
		t.Fatalf("ip_forward = %s after Apply", v)
	}
	// Someone else's value (any nonzero value enables forwarding; 2 tells
	// theirs from ours).
	if out, err := l.exec("sysctl", "-w", sysctlForward4+"=2"); err != nil || l.sysctl(sysctlForward4) != "2" {
		t.Skipf("kernel does not keep ip_forward=2: %v %s", err, out)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if v := l.sysctl(sysctlForward4); v != "2" {
		t.Errorf("Close overwrote someone else's ip_forward: %s, want 2", v)
	}
	l.undoJournal(j)
	if v := l.sysctl(sysctlForward4); v != "2" {
		t.Errorf("undo overwrote someone else's ip_forward: %s, want 2", v)
	}
}

// TestLabBestEffortMark: petrel-mark and src_valid_mark failing degrade
// (warned once), routes, rules and the kill switch still go in; the kill
// switch or the forward filter failing fails Apply without an overlay
// default or forwarding.
func TestLabBestEffortMark(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	l := newLab(t)
	before := l.snapshot()
	var mu sync.Mutex
	failing := map[string]bool{"nft " + nftMarkTable: true, "sysctl " + sysctlSrcValidMrk: true}
	fail := func(what string) error {
		mu.Lock()
		defer mu.Unlock()
		if failing[what] {
			return errors.New("refused by the test")
		}
		return nil
	}
	var logs syncBuf
	m, _ := l.managerWith(&logs, func(o *options) { o.fail = fail })
	for range 3 {
		res, err := m.Apply(exitConfig(true))
		if err != nil {
			t.Fatalf("Apply with petrel-mark failing: %v", err)
		}
		if len(res.Degraded) != 2 || !strings.HasPrefix(res.Degraded[0], "degraded: ") {
			t.Errorf("Degraded = %q, want two notes", res.Degraded)
		}
	}
	mustContain(t, "table 7120", l.ip("route", "show", "table", "7120"), "default dev ptun0", "10.77.0.0/16 dev ptun0")
	mustContain(t, "ip rule", l.ip("rule"), "7110:\tnot from all fwmark 0x7120 lookup 7120")
	nft := l.nft()
	mustContain(t, "nft", nft, "table inet petrel-exit")
	if strings.Contains(nft, "petrel-mark") || l.sysctl(sysctlSrcValidMrk) != before["sysctl "+sysctlSrcValidMrk] {
		t.Errorf("failed best-effort parts installed anyway:\n%s", nft)
	}
	if n := strings.Count(logs.String(), `level=WARN msg="degraded`); n != 2 {
		t.Errorf("%d degradation warnings over 3 Applies, want 2 (one per part)", n)
	}
	mu.Lock()
	clear(failing)
	mu.Unlock()
	if res, err := m.Apply(exitConfig(true)); err != nil || len(res.Degraded) != 0 {
		t.Fatalf("Apply after recovery = %+v, %v", res, err)
	}
	mustContain(t, "nft", l.nft(), "table inet petrel-mark")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	l.requireSnapshot(before, "Close")

	// Required tables: a refused kill switch fails Apply before any route.
	m, _ = l.managerWith(io.Discard, func(o *options) {
		o.fail = func(what string) error {
			if what == "nft "+nftExitTable || what == "nft "+nftFwdTable {
				return errors.New("refused by the test")
			}
			return nil
		}
	})
	if _, err := m.Apply(exitConfig(true)); err == nil {
		t.Error("Apply succeeded without the kill switch")
	}
	if out := l.ip("route", "show", "table", "7120"); out != "" {
		t.Errorf("routes without the kill switch:\n%s", out)
	}
	serve := Config{Interface: "ptun0", Serve: []Serve{{Network: mp("192.0.2.0/24"), Sources: []netip.Prefix{mp("100.64.0.7/32")}}}}
	if _, err := m.Apply(serve); err == nil {
		t.Error("Apply succeeded without the forward filter")
	}
	if v := l.sysctl(sysctlForward4); v != "0" {
		t.Errorf("ip_forward = %s without the forward filter", v)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	l.requireSnapshot(before, "Close after refused tables")
}

// TestLabForwardGuard: the guard against routing between other interfaces
// is there when we turned forwarding on, not when it was on before us.
func TestLabForwardGuard(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const guard = `meta nfproto ipv4 iifname != "ptun0" oifname != "ptun0" drop`
	cfg := Config{Interface: "ptun0", Serve: []Serve{{Network: mp("192.0.2.0/24"), Sources: []netip.Prefix{mp("100.64.0.7/32")}}}}
	for _, prev := range []string{"0", "1"} {
		l := newLab(t)
		if out, err := l.exec("sysctl", "-w", sysctlForward4+"="+prev); err != nil {
			t.Fatalf("sysctl: %v %s", err, out)
		}
		before := l.snapshot()
		m, _ := l.manager()
		if _, err := m.Apply(cfg); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(l.nft(), guard); got != (prev == "0") {
			t.Errorf("ip_forward was %s: guard rule present = %v:\n%s", prev, got, l.nft())
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		l.requireSnapshot(before, "Close (ip_forward was "+prev+")")
	}
}

// TestLabCloseOrder: Close deletes routes before rules, and the mark rule
// before the suppress rule; a first Apply racing Close never leaves a
// drift goroutine behind.
func TestLabCloseOrder(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	l := newLab(t)
	var order []string
	m, _ := l.managerWith(io.Discard, func(o *options) { o.onDelete = func(s string) { order = append(order, s) } })
	if _, err := m.Apply(exitConfig(false)); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	firstRule, pos := -1, map[string]int{}
	for i, s := range order {
		if strings.HasPrefix(s, "rule ") && firstRule < 0 {
			firstRule = i
		}
		if strings.HasPrefix(s, "route ") && firstRule >= 0 {
			t.Errorf("route deleted after a rule: %q", order)
		}
		pos[s] = i
	}
	for _, fam := range []string{"-4", "-6"} {
		mark, sup := pos["rule "+fam+" pref 7110 not fwmark 0x7120 lookup 7120"], pos["rule "+fam+" pref 7100 lookup 254 suppress_prefixlength 0"]
		if firstRule < 0 || mark > sup {
			t.Errorf("%s: the mark rule was not deleted before the suppress rule: %q", fam, order)
		}
	}

	for i := range 30 {
		m, _ := l.managerWith(io.Discard)
		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, _ = m.Apply(Config{Interface: "ptun0", Routes: []netip.Prefix{mp("10.77.0.0/16")}})
		}()
		close(start)
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		m.mu.Lock()
		leaked := m.stop != nil || m.plat != nil
		m.mu.Unlock()
		if leaked {
			t.Fatalf("round %d: Apply after Close's stop left a drift goroutine or state behind", i)
		}
		_ = m.Close()
	}
	if out := l.ip("route", "show", "table", "7120"); out != "" {
		t.Errorf("routes after Close: %s", out)
	}
}

// TestLabDriftChangedTables: a flushed chain and a deleted chain of ours
// are repaired; an intact table is never rewritten.
func TestLabDriftChangedTables(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	l := newLab(t)
	m, _ := l.manager()
	cfg := exitConfig(true)
	cfg.Serve = []Serve{{Network: mp("192.0.2.0/24"), Masquerade: true, Sources: []netip.Prefix{mp("100.64.0.7/32"), mp("100.64.0.9/32")}}}
	if _, err := m.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	tables := func() map[string]string { // per table: a repair changes the listing order
		out := map[string]string{}
		for _, name := range ownedTables {
			out[name], _ = l.exec("nft", "list", "table", "inet", name)
		}
		return out
	}
	applied := tables()
	time.Sleep(500 * time.Millisecond) // several drift checks
	if n := m.Repairs(); n != 0 {
		t.Fatalf("%d repairs of intact tables", n)
	}
	for _, c := range [][]string{
		{"nft", "flush", "chain", "inet", "petrel-exit", "out"},
		{"nft", "add", "rule", "inet", "petrel-fwd", "nat", "accept"},
		{"nft", "flush", "chain", "inet", "petrel-mark", "pre"},
		{"nft", "delete", "chain", "inet", "petrel-mark", "pre"},
	} {
		if out, err := l.exec(c...); err != nil {
			t.Fatalf("%s: %v %s", strings.Join(c, " "), err, out)
		}
	}
	// A check between the two commands on petrel-mark repairs it twice.
	eventually(t, "changed tables repaired", func() bool {
		now := tables()
		for name, text := range applied {
			if now[name] != text {
				return false
			}
		}
		return m.Repairs() >= 3
	})
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}
