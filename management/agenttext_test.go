package management

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"petrel/management/internal/mgmttest"
	"petrel/management/model"
	"petrel/management/store"
	"petrel/proto/managementpb"
)

func TestCleanAgentText(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"alpha", 253, "alpha"},
		{"  spaced  ", 253, "spaced"},
		{"esc\x1b[2Jape", 253, "esc[2Jape"},
		{"new\nline\r\ttab", 253, "newlinetab"},
		{"bidi\u202egnp.exe", 253, "bidignp.exe"},
		{"bad\xff\xfeutf8", 253, "badutf8"},
		{"c1\u0085x\u0000", 253, "c1x"},
		{strings.Repeat("a", 252) + "é", 253, strings.Repeat("a", 252)}, // the cut would split é
		{strings.Repeat("é", 200), 253, strings.Repeat("é", 126)},
		{"東京", 4, "東"},
		{"\x1b\x00", 253, ""},
	} {
		got := cleanAgentText(tc.in, tc.max)
		if got != tc.want {
			t.Errorf("cleanAgentText(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
		if !utf8.ValidString(got) || len(got) > tc.max {
			t.Errorf("cleanAgentText(%q) = %q: invalid or too long", tc.in, got)
		}
	}
}

// hostile is what anyone holding a setup key can send as hostname and OS.
var hostile = []string{
	strings.Repeat("a", 252) + "é",               // byte 253 splits a character
	strings.Repeat("€", 120),                     // 360 bytes
	"evil\x1b[2J\x1b[31mpeer",                    // terminal escapes
	"row\nfake-peer  100.64.0.99  linux  online", // forged table row
	"\xff\xfe\xfd",                               // no valid UTF-8 at all
	"\u202eexe.txt",                              // bidi override
	"nul\x00byte",
	"",
}

// Every peer keeps syncing after hostile registrations: each map encodes,
// and no stored name or OS string keeps an unprintable character.
func TestHostileRegistrationsKeepMapsEncodable(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t))
	ctx := mgmttest.Ctx(t)
	acct := onlyAccount(t, s)
	_, plain := mustSetupKey(t, s, acct, SetupKeyInput{Reusable: true})
	honest := mgmttest.NewKey(t)
	if _, err := login(s, ctx, honest, plain, "honest"); err != nil {
		t.Fatal(err)
	}
	snap, _ := s.Snapshot(acct)
	all := allGroup(snap).ID
	if _, err := s.Put(ctx, acct, &model.Policy{Name: "mesh", Enabled: true, Rules: []model.PolicyRule{{
		Sources: []string{all}, Destinations: []string{all}, Bidirectional: true}}}); err != nil {
		t.Fatal(err)
	}
	for i, h := range hostile {
		_, err := s.Login(ctx, mgmttest.NewKey(t).Public(), &managementpb.LoginRequest{SetupKey: plain, Hostname: h,
			Meta: &managementpb.PeerMeta{Hostname: h, Os: h + strings.Repeat("x", 300), Kernel: h, AgentVersion: h}})
		if err != nil {
			t.Fatalf("hostile registration %d: %v", i, err)
		}
	}
	snap, _ = s.Snapshot(acct)
	for _, p := range snap.Peers {
		for _, f := range []string{p.Name, p.Meta.Hostname, p.Meta.OS, p.Meta.Kernel, p.Meta.Version} {
			if !cleanName(f) || len(f) > maxKernel+maxHostname {
				t.Errorf("peer %s kept an unclean field %q", p.ID, f)
			}
		}
		m := s.freshMap(t, acct, p.ID)
		if _, err := proto.Marshal(m); err != nil {
			t.Fatalf("map of peer %q does not encode: %v", p.Name, err)
		}
	}
	// The honest peer's Sync stream delivers its map.
	st := openStream(t, s, honest, nil)
	if r := st.next(t); r.GetFull() == nil || len(r.GetFull().GetPeers()) != len(hostile) {
		t.Fatalf("honest peer's first sync message: %v", r)
	}
}

// Rows written before these checks are repaired when the service loads
// them: the maps encode again.
func TestPoisonedRowsRepairedOnLoad(t *testing.T) {
	b := sqliteBackend(t)
	st1 := b.Open(t)
	s1, _ := startService(t, st1)
	ctx := mgmttest.Ctx(t)
	acct := onlyAccount(t, s1)
	_, plain := mustSetupKey(t, s1, acct, SetupKeyInput{Reusable: true})
	var ids []string
	for _, h := range []string{"alpha", "bravo"} {
		resp, err := login(s1, ctx, mgmttest.NewKey(t), plain, h)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, resp.GetPeerConfig().GetPeerId())
	}
	snap, _ := s1.Snapshot(acct)
	s1.Stop()
	poisoned := *snap.Peers[ids[0]]
	poisoned.Name = strings.Repeat("a", 252) + "\xc3" // what the old byte cut stored
	poisoned.Meta.OS = "linux\x1b[2J"
	if err := st1.Update(context.Background(), func(tx store.Tx) error { return tx.Put(acct, &poisoned) }); err != nil {
		t.Fatal(err)
	}
	st1.Close()

	s2, _ := startService(t, b.Open(t))
	snap2, _ := s2.Snapshot(acct)
	if p := snap2.Peers[ids[0]]; !utf8.ValidString(p.Name) || !cleanName(p.Meta.OS) {
		t.Fatalf("not repaired: %q %q", p.Name, p.Meta.OS)
	}
	if _, err := proto.Marshal(s2.freshMap(t, acct, ids[1])); err != nil {
		t.Fatalf("bravo's map does not encode: %v", err)
	}
}

// Admin-given names with control characters are refused, not stored.
func TestAdminNamesRefuseControlCharacters(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t))
	acct := onlyAccount(t, s)
	for _, n := range []string{"ops\x1b[2J", "two\nlines", "bad\xffname", "rtl\u202e"} {
		_, err := s.Put(mgmttest.Ctx(t), acct, &model.Group{Name: n})
		wantKind(t, err, KindInvalid, "group named "+n)
	}
}

// FuzzHostileRegistration: whatever an agent sends as hostname and
// metadata, every map of the account still encodes.
func FuzzHostileRegistration(f *testing.F) {
	for _, h := range hostile {
		f.Add(h, h)
	}
	quiet := func(c *Config) { c.Logger = slog.New(slog.DiscardHandler) } // f.Log may not run inside the target
	s, _ := startService(f, mgmttest.SQLite(f, func(testing.TB) *slog.Logger { return slog.New(slog.DiscardHandler) }).Open(f), quiet)
	acct := onlyAccount(f, s)
	_, plain := mustSetupKey(f, s, acct, SetupKeyInput{Reusable: true})
	f.Fuzz(func(t *testing.T, host, os string) {
		resp, err := s.Login(context.Background(), mgmttest.NewKey(t).Public(), &managementpb.LoginRequest{SetupKey: plain,
			Hostname: host, Meta: &managementpb.PeerMeta{Hostname: host, Os: os, Kernel: os, AgentVersion: os}})
		if err != nil {
			t.Skip("registration refused:", err) // e.g. the account is full
		}
		m := s.freshMap(t, acct, resp.GetPeerConfig().GetPeerId())
		if _, err := proto.Marshal(m); err != nil {
			t.Fatalf("map does not encode after registering %q: %v", host, err)
		}
		if _, err := proto.Marshal(resp); err != nil {
			t.Fatalf("login response does not encode: %v", err)
		}
	})
}
