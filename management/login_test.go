package management

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"petrel/management/internal/mgmttest"
	"petrel/management/model"
)

func TestRegistrationKeyKinds(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		clk := newClock()
		s, _ := startService(t, b.Open(t), func(c *Config) { c.Now = clk.Now })
		ctx := mgmttest.Ctx(t)
		acct := onlyAccount(t, s)
		grp := mustGroup(t, s, acct, "servers")

		type attempt struct {
			advance time.Duration
			want    ErrorKind // -1 = success
			msg     string
		}
		ok := attempt{want: -1}
		cases := []struct {
			name     string
			in       SetupKeyInput
			revoke   bool
			attempts []attempt
			check    func(t *testing.T, p *model.Peer)
		}{
			{name: "one-off", in: SetupKeyInput{}, attempts: []attempt{ok, {want: KindPermission, msg: "usage limit reached"}}},
			{name: "reusable", in: SetupKeyInput{Reusable: true}, attempts: []attempt{ok, ok, ok, ok}},
			{name: "reusable-limit-2", in: SetupKeyInput{Reusable: true, UsageLimit: 2}, attempts: []attempt{ok, ok, {want: KindPermission, msg: "usage limit reached"}}},
			{name: "auto-groups", in: SetupKeyInput{Reusable: true, AutoGroups: []string{grp.ID}}, attempts: []attempt{ok},
				check: func(t *testing.T, p *model.Peer) {
					snap, _ := s.Snapshot(acct)
					g := snap.Groups[grp.ID]
					if !contains(g.PeerIDs, p.ID) {
						t.Fatalf("peer %s not in auto-group: %v", p.ID, g.PeerIDs)
					}
					if all := allGroup(snap); !contains(all.PeerIDs, p.ID) {
						t.Fatalf("peer not in All group")
					}
				}},
			{name: "ephemeral", in: SetupKeyInput{Ephemeral: true}, attempts: []attempt{ok},
				check: func(t *testing.T, p *model.Peer) {
					if !p.Ephemeral {
						t.Fatal("peer of an ephemeral key is not ephemeral")
					}
				}},
			{name: "expired", in: SetupKeyInput{Reusable: true, ExpiresIn: time.Hour}, attempts: []attempt{ok, {advance: 2 * time.Hour, want: KindPermission, msg: "expired"}}},
			{name: "revoked", in: SetupKeyInput{Reusable: true}, revoke: true, attempts: []attempt{{want: KindPermission, msg: "revoked"}}},
			{name: "unknown", attempts: []attempt{{want: KindUnauthenticated, msg: "setup key not found"}}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				plain := "psk_doesnotexist"
				var key *model.SetupKey
				if tc.name != "unknown" {
					key, plain = mustSetupKey(t, s, acct, tc.in)
				}
				if tc.revoke {
					if _, err := s.RevokeSetupKey(ctx, acct, key.ID); err != nil {
						t.Fatal(err)
					}
				}
				for i, at := range tc.attempts {
					clk.Advance(at.advance)
					before, _ := s.Snapshot(acct)
					pk := mgmttest.NewKey(t)
					resp, err := login(s, ctx, pk, plain, fmt.Sprintf("%s-%d", tc.name, i))
					after, _ := s.Snapshot(acct)
					if at.want >= 0 {
						wantKind(t, err, at.want, fmt.Sprintf("attempt %d", i))
						if !strings.Contains(err.Error(), at.msg) {
							t.Fatalf("attempt %d: error %q does not say %q", i, err, at.msg)
						}
						if len(after.Peers) != len(before.Peers) {
							t.Fatalf("refused login changed peers: %d -> %d", len(before.Peers), len(after.Peers))
						}
						if key != nil && after.SetupKeys[key.ID].UsedTimes != before.SetupKeys[key.ID].UsedTimes {
							t.Fatal("refused login consumed a use")
						}
						continue
					}
					if err != nil {
						t.Fatalf("attempt %d: %v", i, err)
					}
					p := after.Peers[resp.GetPeerConfig().GetPeerId()]
					if p == nil || p.PublicKey != pk.Public().String() || p.SetupKeyID != key.ID {
						t.Fatalf("attempt %d: peer not stored correctly: %+v", i, p)
					}
					if got := netip.PrefixFrom(p.IP, 16).String(); got != resp.GetPeerConfig().GetAddress() {
						t.Fatalf("address %s, want %s", resp.GetPeerConfig().GetAddress(), got)
					}
					if tc.check != nil {
						tc.check(t, p)
					}
				}
			})
		}
	})
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func TestReauthenticateKnownPeer(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t))
	ctx := mgmttest.Ctx(t)
	acct := onlyAccount(t, s)
	_, plain := mustSetupKey(t, s, acct, SetupKeyInput{})
	pk := mgmttest.NewKey(t)
	first, err := login(s, ctx, pk, plain, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	// No setup key (and the one-off key is used up): still fine.
	again, err := login(s, ctx, pk, "", "alpha-renamed")
	if err != nil {
		t.Fatalf("re-login: %v", err)
	}
	if again.GetPeerConfig().GetAddress() != first.GetPeerConfig().GetAddress() || again.GetPeerConfig().GetPeerId() != first.GetPeerConfig().GetPeerId() {
		t.Fatalf("re-login changed identity: %v vs %v", again.GetPeerConfig(), first.GetPeerConfig())
	}
	snap, _ := s.Snapshot(acct)
	if p := snap.Peers[first.GetPeerConfig().GetPeerId()]; p.Meta.Hostname != "alpha-renamed" || len(snap.Peers) != 1 {
		t.Fatalf("meta not updated or peer duplicated: %+v (%d peers)", p.Meta, len(snap.Peers))
	}
	sc := again.GetServerConfig()
	if sc.GetRelay().GetToken() == "" || sc.GetSignalUrl() != "http://mgmt.lab.test:8080" {
		t.Fatalf("server config incomplete: %v", sc)
	}
	d := sc.GetDomains()
	if strings.Join(d.GetManagement(), ",") != "mgmt.lab.test" || strings.Join(d.GetRelayPoolRoots(), ",") != "relay.lab.test" || strings.Join(d.GetStun(), ",") != "stun.lab.test" {
		t.Fatalf("server domains: %v", d)
	}
	// An unknown key without a setup key is refused.
	_, err = login(s, ctx, mgmttest.NewKey(t), "", "x")
	wantKind(t, err, KindUnauthenticated, "unknown peer without key")
}

func TestConcurrentOneOffRegistration(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s, _ := startService(t, b.Open(t))
		ctx := mgmttest.Ctx(t)
		acct := onlyAccount(t, s)
		_, plain := mustSetupKey(t, s, acct, SetupKeyInput{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for i := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := login(s, ctx, mgmttest.NewKey(t), plain, fmt.Sprintf("racer-%d", i))
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					wins++
				} else if KindOf(err) != KindPermission {
					t.Errorf("loser error kind %d: %v", KindOf(err), err)
				}
			}()
		}
		wg.Wait()
		snap, _ := s.Snapshot(acct)
		if wins != 1 || len(snap.Peers) != 1 {
			t.Fatalf("wins=%d peers=%d, want exactly one", wins, len(snap.Peers))
		}
	})
}

func TestAllocation(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t))
	ctx := mgmttest.Ctx(t)
	acct := onlyAccount(t, s)
	_, plain := mustSetupKey(t, s, acct, SetupKeyInput{Reusable: true})
	ips := map[netip.Addr]bool{}
	var labels []string
	for range 4 {
		resp, err := login(s, ctx, mgmttest.NewKey(t), plain, "My Laptop.local")
		if err != nil {
			t.Fatal(err)
		}
		pfx := netip.MustParsePrefix(resp.GetPeerConfig().GetAddress())
		if !netip.MustParsePrefix("100.64.0.0/16").Contains(pfx.Addr()) || pfx.Addr() == netip.MustParseAddr("100.64.0.0") || ips[pfx.Addr()] {
			t.Fatalf("bad or duplicate address %s", pfx)
		}
		ips[pfx.Addr()] = true
		labels = append(labels, resp.GetPeerConfig().GetDnsLabel())
	}
	if got := strings.Join(labels, ","); got != "my-laptop,my-laptop-2,my-laptop-3,my-laptop-4" {
		t.Fatalf("labels %s", got)
	}
	// Preferred labels: the first free one wins.
	resp, err := s.Login(ctx, mgmttest.NewKey(t).Public(), loginReq(plain, "box", "my-laptop", "db"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetPeerConfig().GetDnsLabel() != "db" || resp.GetPeerConfig().GetFqdn() != "db.petrel.internal" {
		t.Fatalf("preferred label: %v", resp.GetPeerConfig())
	}
	// A second account gets the next /16.
	id2, tok2, err := s.CreateAccount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snap, _ := s.Snapshot(id2)
	if snap.Network.String() != "100.65.0.0/16" {
		t.Fatalf("second account network %s", snap.Network)
	}
	if got, ok := s.AuthenticateToken(tok2); !ok || got != id2 {
		t.Fatalf("token of second account: %q %v", got, ok)
	}
}

func TestSanitizeLabel(t *testing.T) {
	for in, want := range map[string]string{
		"Web-01":                  "web-01",
		"my_host.example.com":     "my-host",
		"--weird--":               "weird",
		"ÄÖÜ":                     "",
		"a  b":                    "a-b",
		strings.Repeat("x", 70):   strings.Repeat("x", 63),
		"":                        "",
		"host name with SPACES!!": "host-name-with-spaces",
	} {
		if got := sanitizeLabel(in); got != want {
			t.Errorf("sanitizeLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRestartKeepsState(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		st1 := b.Open(t)
		s1, token := startService(t, st1)
		if token == "" {
			t.Fatal("no bootstrap token on an empty store")
		}
		ctx := mgmttest.Ctx(t)
		acct := onlyAccount(t, s1)
		key, plain := mustSetupKey(t, s1, acct, SetupKeyInput{Reusable: true, UsageLimit: 5})
		pks := []string{}
		want := map[string]string{}
		for i := range 3 {
			k := mgmttest.NewKey(t)
			resp, err := login(s1, ctx, k, plain, fmt.Sprintf("host%d", i))
			if err != nil {
				t.Fatal(err)
			}
			pks = append(pks, k.Public().String())
			want[k.Public().String()] = resp.GetPeerConfig().GetAddress()
		}
		serverKey := s1.ServerKey()
		s1.Stop()
		st1.Close()

		s2, token2 := startService(t, b.Open(t))
		if token2 != "" {
			t.Fatal("bootstrap created a second token on a non-empty store")
		}
		if s2.ServerKey() != serverKey {
			t.Fatal("server key changed across restart")
		}
		if got, ok := s2.AuthenticateToken(token); !ok || got != acct {
			t.Fatal("admin token lost across restart")
		}
		snap, err := s2.Snapshot(acct)
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.Peers) != 3 || snap.SetupKeys[key.ID].UsedTimes != 3 {
			t.Fatalf("after restart: %d peers, key used %d times", len(snap.Peers), snap.SetupKeys[key.ID].UsedTimes)
		}
		for _, p := range snap.Peers {
			if want[p.PublicKey] != netip.PrefixFrom(p.IP, 16).String() {
				t.Fatalf("peer %s address changed: %s vs %s", p.Name, p.IP, want[p.PublicKey])
			}
		}
		_ = pks
		// The key keeps counting; a new peer does not reuse an address.
		resp, err := login(s2, ctx, mgmttest.NewKey(t), plain, "host3")
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range want {
			if a == resp.GetPeerConfig().GetAddress() {
				t.Fatalf("address %s reused", a)
			}
		}
	})
}

func TestEphemeralPeerRemoved(t *testing.T) {
	clk := newClock()
	s, _ := startService(t, sqliteBackend(t).Open(t), func(c *Config) {
		c.Now = clk.Now
		c.EphemeralTTL = time.Minute
		c.JanitorInterval = 20 * time.Millisecond
	})
	ctx := mgmttest.Ctx(t)
	acct := onlyAccount(t, s)
	_, eph := mustSetupKey(t, s, acct, SetupKeyInput{Ephemeral: true})
	_, durable := mustSetupKey(t, s, acct, SetupKeyInput{})
	re, err := login(s, ctx, mgmttest.NewKey(t), eph, "eph")
	if err != nil {
		t.Fatal(err)
	}
	rd, err := login(s, ctx, mgmttest.NewKey(t), durable, "durable")
	if err != nil {
		t.Fatal(err)
	}
	// A connected ephemeral peer stays.
	_, eph2 := mustSetupKey(t, s, acct, SetupKeyInput{Ephemeral: true})
	k2 := mgmttest.NewKey(t)
	r2, err := login(s, ctx, k2, eph2, "eph-online")
	if err != nil {
		t.Fatal(err)
	}
	str := openStream(t, s, k2, nil)
	str.next(t)
	clk.Advance(2 * time.Minute)
	waitFor(t, "ephemeral peer removal", func() bool {
		snap, _ := s.Snapshot(acct)
		return snap.Peers[re.GetPeerConfig().GetPeerId()] == nil
	})
	snap, _ := s.Snapshot(acct)
	if snap.Peers[rd.GetPeerConfig().GetPeerId()] == nil {
		t.Fatal("durable peer removed")
	}
	if snap.Peers[r2.GetPeerConfig().GetPeerId()] == nil {
		t.Fatal("connected ephemeral peer removed")
	}
	if all := allGroup(snap); contains(all.PeerIDs, re.GetPeerConfig().GetPeerId()) {
		t.Fatal("removed peer still in All group")
	}
}

func TestLifecycleIdempotent(t *testing.T) {
	st := sqliteBackend(t).Open(t)
	s, err := New(Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err == nil {
		t.Fatal("second Start succeeded")
	}
	s.Stop()
	s.Stop()
	if _, _, err := s.Bootstrap(context.Background()); KindOf(err) != KindUnavailable {
		t.Fatalf("Bootstrap after Stop: %v", err)
	}
	st.Close()
}

// The same new key logging in concurrently (an agent retrying) registers
// one peer; every attempt succeeds with the same identity.
func TestConcurrentSameKeyLogin(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t))
	ctx := mgmttest.Ctx(t)
	acct := onlyAccount(t, s)
	_, plain := mustSetupKey(t, s, acct, SetupKeyInput{Reusable: true})
	id2, _, err := s.CreateAccount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, plain2 := mustSetupKey(t, s, id2, SetupKeyInput{Reusable: true})
	k := mgmttest.NewKey(t)
	var wg sync.WaitGroup
	ids := make([]string, 10)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := plain
			if i%2 == 1 {
				key = plain2 // a key of another account must not register it twice
			}
			resp, err := login(s, ctx, k, key, "same")
			if err != nil {
				t.Errorf("login %d: %v", i, err)
				return
			}
			ids[i] = resp.GetPeerConfig().GetPeerId()
		}()
	}
	wg.Wait()
	a1, _ := s.Snapshot(acct)
	a2, _ := s.Snapshot(id2)
	if len(a1.Peers)+len(a2.Peers) != 1 {
		t.Fatalf("%d + %d peers for one key", len(a1.Peers), len(a2.Peers))
	}
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("logins returned different peers: %v", ids)
		}
	}
}
