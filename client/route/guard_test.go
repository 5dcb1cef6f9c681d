package route

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// TestForwardTableGuard: with forwarding turned on by us, forwarded traffic
// neither from nor to the overlay is dropped, per family we turned on.
func TestForwardTableGuard(t *testing.T) {
	serve := []Serve{{Network: mp("10.9.0.0/16"), Sources: []netip.Prefix{mp("100.64.0.7/32")}}}
	got := forwardTable("pt0", serve, fwdGuard{v4: true}).String()
	want := `table inet petrel-fwd {
	set src0 { type ip_addr; flags interval; elements = { 100.64.0.7/32 } }
	chain fwd { type filter hook forward priority 0; policy accept;
		iifname "pt0" ct state established,related accept
		iifname "pt0" ip daddr 10.9.0.0/16 ip saddr @src0 accept
		iifname "pt0" drop
		meta nfproto ipv4 iifname != "pt0" oifname != "pt0" drop
	}
}
`
	if got != want {
		t.Fatalf("forward table with guard:\n%s\nwant:\n%s", got, want)
	}
	both := forwardTable("pt0", serve, fwdGuard{v4: true, v6: true}).String()
	if !strings.Contains(both, `meta nfproto ipv6 iifname != "pt0" oifname != "pt0" drop`) {
		t.Errorf("IPv6 guard missing:\n%s", both)
	}
	if none := forwardTable("pt0", serve, fwdGuard{}).String(); strings.Contains(none, "!= \"pt0\" oifname") {
		t.Errorf("guard without our forwarding:\n%s", none)
	}
	// wantState guards only the families it turns forwarding on for.
	d := wantState(Config{Interface: "pt0", Serve: serve}, hostLAN{}, fwdGuard{v4: true, v6: true})
	s := d.tables[len(d.tables)-1].String()
	if !strings.Contains(s, "meta nfproto ipv4 iifname") || strings.Contains(s, "meta nfproto ipv6 iifname") {
		t.Errorf("wantState forward table for IPv4 networks:\n%s", s)
	}
}

func TestRestoreSysctl(t *testing.T) {
	tests := []struct {
		cur, prev, wrote string
		want             bool
	}{
		{"1", "0", "1", true},  // still ours: restore
		{"0", "0", "1", false}, // already back
		{"2", "0", "1", false}, // someone else's value since: leave it
		{"1", "0", "", true},   // older entry without "value": restore
		{"0", "0", "", false},
	}
	for _, tc := range tests {
		if got := restoreSysctl(tc.cur, tc.prev, tc.wrote); got != tc.want {
			t.Errorf("restoreSysctl(cur %q, prev %q, wrote %q) = %v, want %v", tc.cur, tc.prev, tc.wrote, got, tc.want)
		}
	}
}

func TestTeardownOrder(t *testing.T) {
	rules := wantRules(Config{Interface: "pt0", Exit: Exit{Active: true}},
		[]routeSpec{{Dst: mp("0.0.0.0/0")}, {Dst: mp("::/0")}},
		hostLAN{v4: []netip.Prefix{mp("192.168.1.0/24")}})
	var prefs []int
	for _, r := range teardownOrder(rules) {
		prefs = append(prefs, r.Pref)
	}
	if want := []int{7110, 7110, 7100, 7100, 7090}; !slices.Equal(prefs, want) {
		t.Fatalf("teardown order = %v, want %v (the mark rule before the suppress rule)", prefs, want)
	}
}

type memJournal struct {
	entries []string
	fail    error
}

func (j *memJournal) Record(kind, name string, data map[string]string) error {
	if j.fail != nil {
		return j.fail
	}
	j.entries = append(j.entries, journalKey(kind, name, data))
	return nil
}

// TestRecordOnce: each distinct entry is journaled once per Manager; a
// failed Record is retried.
func TestRecordOnce(t *testing.T) {
	j := &memJournal{}
	m := New(nil, j)
	m.mu.Lock()
	defer m.mu.Unlock()
	for range 5 {
		for _, d := range []map[string]string{{"prev": "0", "value": "1"}, {"value": "1", "prev": "0"}} {
			if err := m.record(KindSysctl, sysctlForward4, d); err != nil {
				t.Fatal(err)
			}
		}
	}
	_ = m.record(KindSysctl, sysctlForward4, map[string]string{"prev": "1", "value": "0"}) // other data: another entry
	j.fail = errors.New("disk full")
	if err := m.record(KindRoute, "r", nil); err == nil {
		t.Fatal("a failed Record was not reported")
	}
	j.fail = nil
	_ = m.record(KindRoute, "r", nil)
	if len(j.entries) != 3 {
		t.Fatalf("journaled %d entries, want 3: %q", len(j.entries), j.entries)
	}
}
