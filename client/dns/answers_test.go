package dns

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// qopts shape a test query.
type qopts struct {
	id      uint16
	noRD    bool
	cd, ad  bool
	edns    uint16 // 0: no OPT
	do      bool
	cookie  bool // a COOKIE option in the OPT
	padding bool // a PADDING option in the OPT
}

func (o qopts) String() string {
	return fmt.Sprintf("id=%d rd=%v cd=%v ad=%v edns=%d do=%v cookie=%v", o.id, !o.noRD, o.cd, o.ad, o.edns, o.do, o.cookie)
}

func packQuery(t testing.TB, name string, qtype uint16, o qopts) []byte {
	t.Helper()
	q := new(mdns.Msg)
	q.SetQuestion(name, qtype)
	q.Id = o.id
	q.RecursionDesired = !o.noRD
	q.CheckingDisabled = o.cd
	q.AuthenticatedData = o.ad
	if o.edns > 0 {
		q.SetEdns0(o.edns, o.do)
		opt := q.IsEdns0()
		if o.cookie {
			opt.Option = append(opt.Option, &mdns.EDNS0_COOKIE{Code: mdns.EDNS0COOKIE, Cookie: "0123456789abcdef"})
		}
		if o.padding {
			opt.Option = append(opt.Option, &mdns.EDNS0_PADDING{Padding: make([]byte, 7)})
		}
	}
	pkt, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return pkt
}

// fullPath is the answer to pkt without the fast path: a reader with an
// empty table that learns nothing, the slow path run to the end.
func fullPath(t testing.TB, r *Resolver, pkt []byte) []byte {
	t.Helper()
	u := memReader(t, r)
	u.answers.reset(r.state.Load())
	out, slow := u.handle(pkt)
	if slow != nil {
		resp := r.serveMsg(slow, true)
		var err error
		if out, err = resp.Pack(); err != nil {
			t.Fatal(err)
		}
	}
	if u.replays != 0 {
		t.Fatal("a fresh reader replayed")
	}
	return bytes.Clone(out)
}

// miekgPath is the answer miekg's server path (serveWire over UDP) gives.
func miekgPath(t testing.TB, r *Resolver, pkt []byte) []byte {
	t.Helper()
	q := new(mdns.Msg)
	if err := q.Unpack(pkt); err != nil {
		t.Fatal(err)
	}
	w := &discardWriter{udp: true}
	r.serveWire(w, q)
	return w.wire
}

// spellings of name: as given, upper case, alternating.
func spellings(name string) []string {
	alt := []byte(name)
	for i := range alt {
		if i%2 == 0 {
			alt[i] = strings.ToUpper(string(alt[i]))[0]
		}
	}
	return []string{name, strings.ToUpper(name), string(alt)}
}

func fastRig(t *testing.T) *cacheRig {
	rig := newCacheRig(t, nil)
	rig.set("api.example.net.", "192.0.2.10", "2001:db8::10")
	s := zoneSettings()
	for i := 0; i < 40; i++ { // an answer over 512 bytes
		s.Zones[1].Records = append(s.Zones[1].Records, Record{Name: "many.corp.example.", Type: "A", Value: fmt.Sprintf("10.5.0.%d", i)})
	}
	s.Zones = append(s.Zones, Zone{Domain: "42.", Records: []Record{{Name: "7", Type: "A", Value: "10.42.0.7"}}}) // names without letters
	s.ManagementHost = "api.example.net"
	s.Groups = []NameserverGroup{{ID: "p", Servers: []netip.AddrPort{netip.MustParseAddrPort(primaryNS)}, Primary: true}}
	rig.r.Apply(s)
	rig.cached(t, "api.example.net.")
	return rig
}

// The fast path answers exactly what the full path answers, whatever the
// query's case, ID, RD/CD/AD bits, EDNS size, DO bit and options, and it
// replays only what it may.
func TestFastPathMatchesFullPath(t *testing.T) {
	rig := fastRig(t)
	r := rig.r
	var variants []qopts
	for i, edns := range []uint16{0, 512, 1232, 4096} {
		for _, do := range []bool{false, true} {
			if edns == 0 && do {
				continue
			}
			variants = append(variants,
				qopts{id: uint16(100 + i), edns: edns, do: do},
				qopts{id: uint16(200 + i), edns: edns, do: do, noRD: true, cd: true},
				qopts{id: uint16(300 + i), edns: edns, do: do, ad: true, cookie: edns > 0},
				qopts{id: uint16(400 + i), edns: edns, do: do, padding: edns > 0},
			)
		}
	}
	for _, tc := range []struct {
		name  string
		qtype uint16
		fast  bool // repeats are replayed
	}{
		{"laptop.petrel.internal.", mdns.TypeA, true},
		{"laptop.petrel.internal.", mdns.TypeAAAA, true},   // NODATA
		{"laptop.petrel.internal.", 65280, true},           // unknown type: NODATA
		{"laptop.petrel.internal.", mdns.TypeANY, true},    // every record
		{"nope.petrel.internal.", mdns.TypeA, true},        // NXDOMAIN
		{"petrel.internal.", mdns.TypeSOA, true},           // apex: NODATA, SOA owned by the lower-case name
		{"laptop.", mdns.TypeA, true},                      // search domain
		{"alias.corp.example.", mdns.TypeA, true},          // CNAME chain inside the zone
		{"x.y.apps.corp.example.", mdns.TypeA, true},       // wildcard
		{"txt.corp.example.", mdns.TypeTXT, true},          // ~350 bytes
		{"5.0.64.100.in-addr.arpa.", mdns.TypePTR, true},   // overlay reverse zone
		{"9.9.64.100.in-addr.arpa.", mdns.TypePTR, true},   // NXDOMAIN there
		{"api.example.net.", mdns.TypeA, true},             // cache hit
		{"api.example.net.", mdns.TypeAAAA, true},          // cache hit
		{"many.corp.example.", mdns.TypeA, false},          // over 512 bytes: truncation depends on the client
		{"loop1.corp.example.", mdns.TypeA, true},          // CNAME loop: the zone's SERVFAIL
		{"www.example.org.", mdns.TypeA, false},            // primary group: slow path
		{"ext.corp.example.", mdns.TypeA, false},           // CNAME leaving the zones: slow path
		{"laptop.petrel.internal.", mdns.TypeAXFR, false},  // meta type: not read
		{"123.petrel.internal.", mdns.TypeA, true},         // NXDOMAIN
		{"7.42.", mdns.TypeA, true},                        // no letter: nothing to patch
		{"8.42.", mdns.TypeA, true},                        // no letter: NXDOMAIN
		{"7.42.", mdns.TypeAAAA, true},                     // no letter: NODATA
		{"under_score.petrel.internal.", mdns.TypeA, true}, // NXDOMAIN
		{"a.b.corp.example.", mdns.TypeA, true},            // deeper name
		{"b.corp.example.", mdns.TypeA, true},              // empty non-terminal: NODATA
		{"web.corp.example.", mdns.TypeAAAA, true},         // AAAA
		{"peer.corp.example.", mdns.TypeA, true},           // CNAME to another local zone
		{"elsewhere.org.", mdns.TypeA, false},              // out-of-zone record dropped: primary group
		{"signal.example.net.", mdns.TypeA, false},         // not a cache name: group
		{"server.petrel.internal.", mdns.TypeA, true},      // relative name in the zone
		{"d0.corp.example.", mdns.TypeA, true},             // CNAME chain too long: the zone's SERVFAIL
		{"real.apps.corp.example.", mdns.TypeTXT, true},    // exact name beats the wildcard
		{"real.apps.corp.example.", mdns.TypeA, true},      // NODATA, no wildcard
		{"nope.corp.example.", mdns.TypeMX, true},          // NXDOMAIN in the second zone
		{"5.0.64.100.in-addr.arpa.", mdns.TypeA, true},     // reverse zone NODATA
		{"www.corp.example.", mdns.TypeAAAA, true},         // CNAME then AAAA
		{"www.corp.example.", mdns.TypeCNAME, true},        // the CNAME itself
		{"api.example.net.", mdns.TypeTXT, false},          // not A/AAAA: the cache passes, group
		{"x.relay.example.net.", mdns.TypeA, false},        // not a pool root here: group
		{"laptop.petrel.internal.", mdns.TypeOPT, false},   // OPT as a question: not read
		{"laptop.petrel.internal.", mdns.TypeTSIG, false},  // TSIG as a question: not read
		{"laptop.petrel.internal.", mdns.TypeMAILA, false}, // meta type: not read
		{"laptop.petrel.internal.", mdns.TypeNone, false},  // type 0: not read
	} {
		u := memReader(t, r)
		for pass := 0; pass < 2; pass++ {
			for i, o := range variants {
				for _, sp := range spellings(tc.name) {
					o.id += uint16(pass*1000 + i)
					pkt := packQuery(t, sp, tc.qtype, o)
					before := u.replays
					out, slow := u.handle(pkt)
					if slow != nil {
						if tc.fast {
							t.Fatalf("%s %s %v: slow path", sp, mdns.TypeToString[tc.qtype], o)
						}
						continue
					}
					want := fullPath(t, r, pkt)
					if !bytes.Equal(out, want) {
						t.Fatalf("%s %s %v (pass %d, replayed %v): fast path differs\ngot  %x\nwant %x", sp, mdns.TypeToString[tc.qtype], o, pass, u.replays > before, out, want)
					}
					if !bytes.Equal(want, miekgPath(t, r, pkt)) {
						t.Fatalf("%s %s %v: reader and miekg path differ", sp, mdns.TypeToString[tc.qtype], o)
					}
					if replayed := u.replays > before; pass == 1 && replayed != tc.fast {
						t.Fatalf("%s %s %v: replayed %v, want %v", sp, mdns.TypeToString[tc.qtype], o, replayed, tc.fast)
					}
				}
			}
		}
	}
}

// askFast sends one query through reader u and checks the answer against
// the full path; it reports whether it was replayed.
func askFast(t *testing.T, r *Resolver, u *udpReader, name string, qtype uint16) (*mdns.Msg, bool) {
	t.Helper()
	pkt := packQuery(t, name, qtype, qopts{id: 7, edns: 1232})
	before := u.replays
	out, slow := u.handle(pkt)
	if slow != nil {
		resp := r.serveMsg(slow, true)
		var err error
		if out, err = resp.Pack(); err != nil {
			t.Fatal(err)
		}
	}
	m := new(mdns.Msg)
	if err := m.Unpack(out); err != nil {
		t.Fatal(err)
	}
	if want := fullPath(t, r, pkt); !bytes.Equal(out, want) {
		t.Fatalf("%s: fast path differs from the full path:\n%v", name, m)
	}
	return m, u.replays > before
}

// A zone change (any Apply) or a server-domain change retires the
// pre-encoded answers: the next query gets the new data.
func TestFastPathInvalidation(t *testing.T) {
	rig := newCacheRig(t, nil)
	r := rig.r
	s := zoneSettings()
	s.Groups = nil
	r.Apply(s)
	u := memReader(t, r)
	learn := func(name string, qtype uint16, want string) {
		t.Helper()
		for i := 0; i < 2; i++ {
			m, replayed := askFast(t, r, u, name, qtype)
			if got := fmt.Sprintf("%v %s", addrsOf(m), mdns.RcodeToString[m.Rcode]); got != want {
				t.Fatalf("%s: %s, want %s", name, got, want)
			}
			if replayed != (i == 1) {
				t.Fatalf("%s query %d: replayed %v", name, i, replayed)
			}
		}
	}
	learn("laptop.petrel.internal.", mdns.TypeA, "[100.64.0.5] NOERROR")
	learn("Nope.petrel.internal.", mdns.TypeA, "[] NXDOMAIN")

	// A delta: laptop moves, nope appears.
	s.Zones[0].Records[0].Value = "100.64.0.99"
	s.Zones[0].Records = append(s.Zones[0].Records, Record{Name: "nope", Type: "A", Value: "100.64.0.7"})
	r.Apply(s)
	learn("laptop.petrel.internal.", mdns.TypeA, "[100.64.0.99] NOERROR")
	learn("nOpe.petrel.internal.", mdns.TypeA, "[100.64.0.7] NOERROR")

	// laptop becomes a management name: the cache answers it from now on.
	rig.set("laptop.petrel.internal.", "203.0.113.5")
	r.ApplyServerDomains(mgmtOnly("laptop.petrel.internal"))
	rig.cached(t, "laptop.petrel.internal.")
	learn("laptop.petrel.internal.", mdns.TypeA, "[203.0.113.5] NOERROR")
	if m, _ := askFast(t, r, u, "laptop.petrel.internal.", mdns.TypeA); m.Authoritative {
		t.Fatal("the cache's answer is not authoritative")
	}

	// server becomes a management name whose lookup fails: while the miss
	// backs off, the cache passes and the zone answers, but that answer
	// is not kept, since once the back-off ends the cache looks again.
	learn("server.petrel.internal.", mdns.TypeA, "[100.64.0.6] NOERROR")
	rig.failWith("server.petrel.internal.", mdns.RcodeServerFailure)
	r.ApplyServerDomains(mgmtOnly("laptop.petrel.internal", "server.petrel.internal"))
	rig.waitIdle(t)
	for i := 0; i < 3; i++ {
		if m, replayed := askFast(t, r, u, "server.petrel.internal.", mdns.TypeA); fmt.Sprint(addrsOf(m)) != "[100.64.0.6]" || replayed {
			t.Fatalf("during the back-off: %v (replayed %v)", m, replayed)
		}
	}
	rig.set("server.petrel.internal.", "203.0.113.6")
	rig.clk.Advance(refreshBackoff)
	if m, _ := askFast(t, r, u, "server.petrel.internal.", mdns.TypeA); fmt.Sprint(addrsOf(m)) != "[203.0.113.6]" {
		t.Fatalf("after the back-off: %v", m)
	}
}

// A replayed cache hit carries the TTL the full path would give at that
// moment: it counts down with the clock, and a stale entry is never
// replayed (its answer starts the refresh).
func TestFastPathCacheTTL(t *testing.T) {
	rig := fastRig(t)
	r := rig.r
	u := memReader(t, r)
	ask := func(wantTTL uint32, wantReplay bool) {
		t.Helper()
		m, replayed := askFast(t, r, u, "api.example.net.", mdns.TypeA)
		if len(m.Answer) != 1 || m.Answer[0].Header().Ttl != wantTTL {
			t.Fatalf("answer %v, want TTL %d", m, wantTTL)
		}
		if replayed != wantReplay {
			t.Fatalf("TTL %d: replayed %v, want %v", wantTTL, replayed, wantReplay)
		}
	}
	ttl := uint32(defaultCacheTTL / time.Second)
	ask(ttl, false)
	ask(ttl, true)
	rig.clk.Advance(400 * time.Millisecond) // within the first second
	ask(ttl, true)
	rig.clk.Advance(700 * time.Millisecond)
	ask(ttl-1, false)
	ask(ttl-1, true)
	rig.clk.Advance(10 * time.Second)
	ask(ttl-11, false)
	ask(ttl-11, true)

	// Stale: the short TTL, never replayed, and each such answer is what
	// starts (at most one) refresh.
	rig.hold()
	rig.set("api.example.net.", "192.0.2.20")
	lookups := rig.bypassQ.get("api.example.net. A")
	rig.clk.Advance(defaultCacheTTL)
	ask(staleAnswerTTL, false)
	ask(staleAnswerTTL, false)
	eventually(t, "the refresh", func() bool { return rig.bypassQ.get("api.example.net. A") == lookups+1 })
	rig.release()
	rig.waitIdle(t)
	m, replayed := askFast(t, r, u, "api.example.net.", mdns.TypeA)
	if fmt.Sprint(addrsOf(m)) != "[192.0.2.20]" || replayed {
		t.Fatalf("after the refresh: %v (replayed %v)", m, replayed)
	}
	ask(ttl, true)
}

// Odd packets for a name whose answer the reader already keeps are never
// replayed, never panic, and get what a reader with no table gives.
func TestFastPathOddPackets(t *testing.T) {
	r := newTestResolver(t, Config{})
	s := zoneSettings()
	s.Groups = nil
	r.Apply(s)
	u := memReader(t, r)
	good := packQuery(t, "laptop.petrel.internal.", mdns.TypeA, qopts{id: 9, edns: 1232})
	plain := packQuery(t, "laptop.petrel.internal.", mdns.TypeA, qopts{id: 9})
	for _, p := range [][]byte{good, good, plain, plain} {
		u.handle(p)
	}
	if u.replays != 2 {
		t.Fatalf("%d replays, want 2", u.replays)
	}
	nameEnd := 12 + len("laptop.petrel.internal.") + 1
	optAt := nameEnd + 4
	edit := func(base []byte, f func(b []byte) []byte) []byte { return f(bytes.Clone(base)) }
	put16 := func(b []byte, at int, v uint16) []byte { binary.BigEndian.PutUint16(b[at:], v); return b }
	odd := map[string][]byte{
		"trailing byte":       append(bytes.Clone(good), 0),
		"trailing byte plain": append(bytes.Clone(plain), 0),
		"QR":                  edit(good, func(b []byte) []byte { b[2] |= 0x80; return b }),
		"opcode NOTIFY":       edit(good, func(b []byte) []byte { b[2] |= mdns.OpcodeNotify << 3; return b }),
		"opcode STATUS":       edit(good, func(b []byte) []byte { b[2] |= mdns.OpcodeStatus << 3; return b }),
		"AA":                  edit(good, func(b []byte) []byte { b[2] |= 0x04; return b }),
		"TC":                  edit(good, func(b []byte) []byte { b[2] |= 0x02; return b }),
		"RA":                  edit(good, func(b []byte) []byte { b[3] |= 0x80; return b }),
		"Z":                   edit(good, func(b []byte) []byte { b[3] |= 0x40; return b }),
		"rcode":               edit(good, func(b []byte) []byte { b[3] |= 0x03; return b }),
		"two questions":       edit(good, func(b []byte) []byte { return put16(b, 4, 2) }),
		"no question":         edit(good, func(b []byte) []byte { return put16(b, 4, 0) }),
		"answer count":        edit(plain, func(b []byte) []byte { return put16(b, 6, 1) }),
		"authority count":     edit(plain, func(b []byte) []byte { return put16(b, 8, 1) }),
		"additional, no OPT":  edit(plain, func(b []byte) []byte { return put16(b, 10, 1) }),
		"class CH":            edit(good, func(b []byte) []byte { return put16(b, nameEnd+2, mdns.ClassCHAOS) }),
		"class ANY":           edit(good, func(b []byte) []byte { return put16(b, nameEnd+2, mdns.ClassANY) }),
		"OPT version 1":       edit(good, func(b []byte) []byte { b[optAt+6] = 1; return b }),
		"OPT ext rcode":       edit(good, func(b []byte) []byte { b[optAt+5] = 1; return b }),
		"OPT other flag":      edit(good, func(b []byte) []byte { b[optAt+8] = 1; return b }),
		"OPT owner not root":  append(append(bytes.Clone(good[:optAt]), 1, 'x', 0), good[optAt+1:]...),
		"OPT rdlen too long":  edit(good, func(b []byte) []byte { return put16(b, optAt+9, 4) }),
		"OPT type TXT":        edit(good, func(b []byte) []byte { return put16(b, optAt+1, mdns.TypeTXT) }),
		"OPT twice":           append(put16(bytes.Clone(good), 10, 2), good[optAt:]...),
		"OPT with ECS": append(put16(bytes.Clone(good), optAt+9, 8),
			0, 8, 0, 4, 0, 1, 24, 0), // ECS: family 1, /24, no address: miekg rejects it
		"OPT with NSID":         append(put16(bytes.Clone(good), optAt+9, 4), 0, 3, 0, 0),
		"OPT option overflow":   append(put16(bytes.Clone(good), optAt+9, 4), 0, 10, 0, 9),
		"OPT short option":      append(put16(bytes.Clone(good), optAt+9, 2), 0, 10),
		"compression pointer":   append(append(bytes.Clone(good[:12]), 0xC0, 12), good[nameEnd:]...),
		"label with a dot":      edit(good, func(b []byte) []byte { b[13] = '.'; return b }),
		"label with a space":    edit(good, func(b []byte) []byte { b[14] = ' '; return b }),
		"label with high bit":   edit(good, func(b []byte) []byte { b[14] = 0xC1; return b }),
		"label with backslash":  edit(good, func(b []byte) []byte { b[14] = '\\'; return b }),
		"label with zero byte":  edit(good, func(b []byte) []byte { b[14] = 0; return b }),
		"reserved label type":   edit(good, func(b []byte) []byte { b[12] |= 0x40; return b }),
		"name past the end":     edit(good, func(b []byte) []byte { b[12+1+6] = 60; return b }),
		"root name":             append(append(bytes.Clone(good[:12]), 0), good[nameEnd:]...),
		"qtype AXFR":            edit(good, func(b []byte) []byte { return put16(b, nameEnd, mdns.TypeAXFR) }),
		"qtype OPT":             edit(good, func(b []byte) []byte { return put16(b, nameEnd, mdns.TypeOPT) }),
		"qtype 0":               edit(good, func(b []byte) []byte { return put16(b, nameEnd, 0) }),
		"short question":        good[:nameEnd+3],
		"additional count, end": edit(plain, func(b []byte) []byte { return put16(b, 10, 1) }),
	}
	for n := 0; n < len(good); n++ {
		odd[fmt.Sprintf("first %d bytes", n)] = good[:n]
	}
	for n := 0; n < len(plain); n++ {
		odd[fmt.Sprintf("first %d bytes, no EDNS", n)] = plain[:n]
	}
	for name, pkt := range odd {
		var q wireQuery
		q.key = make([]byte, 0, maxWireName+3)
		if parseWireQuery(pkt, &q) {
			t.Errorf("%s: read as a plain query", name)
		}
		before := u.replays
		out, slow := u.handle(pkt)
		if u.replays != before {
			t.Errorf("%s: replayed", name)
			continue
		}
		if slow != nil {
			continue // the slow path's answer is the full path's by construction
		}
		if want := fullPath(t, r, pkt); !bytes.Equal(out, want) {
			t.Errorf("%s: answer differs from a reader without a table", name)
		}
	}
	// The reader still replays the good query.
	before := u.replays
	u.handle(good)
	if u.replays != before+1 {
		t.Fatal("good query no longer replayed")
	}
}

// The wire reader accepts the plain shape and keys it by the lower-cased
// name, type and EDNS state (not ID, flags, EDNS size or options).
func TestParseWireQuery(t *testing.T) {
	key := func(pkt []byte) string {
		t.Helper()
		var q wireQuery
		q.key = make([]byte, 0, maxWireName+3)
		if !parseWireQuery(pkt, &q) {
			t.Fatalf("not read: %x", pkt)
		}
		if testing.AllocsPerRun(10, func() { parseWireQuery(pkt, &q) }) != 0 {
			t.Fatal("parseWireQuery allocates")
		}
		return string(q.key)
	}
	base := key(packQuery(t, "Laptop.petrel.internal.", mdns.TypeA, qopts{}))
	same := []qopts{{id: 1}, {noRD: true, cd: true, ad: true}}
	for _, o := range same {
		if k := key(packQuery(t, "lAPTOP.petrel.internal.", mdns.TypeA, o)); k != base {
			t.Fatalf("%v: key %q, want %q", o, k, base)
		}
	}
	edns := key(packQuery(t, "laptop.petrel.internal.", mdns.TypeA, qopts{edns: 512}))
	for _, o := range []qopts{{edns: 4096}, {edns: 1232, cookie: true}, {edns: 100, padding: true, cookie: true}} {
		if k := key(packQuery(t, "laptop.petrel.internal.", mdns.TypeA, o)); k != edns {
			t.Fatalf("%v: key %q, want %q", o, k, edns)
		}
	}
	distinct := map[string]string{
		"base": base, "edns": edns,
		"do":    key(packQuery(t, "laptop.petrel.internal.", mdns.TypeA, qopts{edns: 512, do: true})),
		"aaaa":  key(packQuery(t, "laptop.petrel.internal.", mdns.TypeAAAA, qopts{})),
		"name":  key(packQuery(t, "laptop.petrel.internal2.", mdns.TypeA, qopts{})),
		"label": key(packQuery(t, "lap.top.petrel.internal.", mdns.TypeA, qopts{})),
	}
	seen := map[string]string{}
	for what, k := range distinct {
		if other, dup := seen[k]; dup {
			t.Fatalf("%s and %s share a key", what, other)
		}
		seen[k] = what
	}
}
