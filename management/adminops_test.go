package management

import (
	"net/netip"
	"strings"
	"testing"

	"petrel/management/internal/mgmttest"
	"petrel/management/model"
)

func TestAdminValidation(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t))
	ctx := mgmttest.Ctx(t)
	acct := onlyAccount(t, s)
	_, plain := mustSetupKey(t, s, acct, SetupKeyInput{Reusable: true})
	r1, err := login(s, ctx, mgmttest.NewKey(t), plain, "router")
	if err != nil {
		t.Fatal(err)
	}
	peerID := r1.GetPeerConfig().GetPeerId()
	web := mustGroup(t, s, acct, "web", peerID)
	snap, _ := s.Snapshot(acct)
	all := allGroup(snap)

	rule := func(mut func(r *model.PolicyRule)) *model.Policy {
		r := model.PolicyRule{Sources: []string{web.ID}, Destinations: []string{all.ID}, Protocol: model.ProtoTCP,
			Ports: []model.PortRange{{Start: 80, End: 80}}, Action: model.ActionAccept}
		if mut != nil {
			mut(&r)
		}
		return &model.Policy{Name: "p", Enabled: true, Rules: []model.PolicyRule{r}}
	}
	route := func(mut func(r *model.Route)) *model.Route {
		r := &model.Route{Network: netip.MustParsePrefix("10.20.0.0/24"), Peer: peerID, Groups: []string{all.ID}, Enabled: true}
		if mut != nil {
			mut(r)
		}
		return r
	}
	nsg := func(mut func(n *model.NameserverGroup)) *model.NameserverGroup {
		n := &model.NameserverGroup{Name: "corp", Nameservers: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.53:53")},
			Domains: []string{"corp.example"}, Groups: []string{all.ID}, Enabled: true}
		if mut != nil {
			mut(n)
		}
		return n
	}
	zone := func(recs ...model.DNSRecord) *model.DNSZone {
		return &model.DNSZone{Domain: "lab.example", Records: recs}
	}
	cases := []struct {
		name string
		obj  model.Object
		want ErrorKind
		msg  string
	}{
		{"group empty name", &model.Group{Name: " "}, KindInvalid, "name must not be empty"},
		{"group duplicate name", &model.Group{Name: "WEB"}, KindConflict, "already exists"},
		{"group named All", &model.Group{Name: "All"}, KindConflict, "already exists"},
		{"edit All", &model.Group{ID: all.ID, Name: "All", PeerIDs: nil}, KindInvalid, "cannot be edited"},
		{"group unknown peer", &model.Group{Name: "g", PeerIDs: []string{"nope"}}, KindInvalid, "unknown peer"},
		{"group unknown id", &model.Group{ID: "nope", Name: "g"}, KindNotFound, "not found"},
		{"policy empty name", &model.Policy{Name: "", Rules: rule(nil).Rules}, KindInvalid, "name must not be empty"},
		{"policy no rules", &model.Policy{Name: "p"}, KindInvalid, "no rules"},
		{"policy description with ESC", func() *model.Policy { p := rule(nil); p.Description = "x\x1b[2J"; return p }(), KindInvalid, "control characters"},
		{"route description with newline", route(func(r *model.Route) { r.Description = "two\nlines" }), KindInvalid, "control characters"},
		{"nameserver group description with bidi", nsg(func(n *model.NameserverGroup) { n.Description = "rtl\u202e" }), KindInvalid, "control characters"},
		{"rule unknown source", rule(func(r *model.PolicyRule) { r.Sources = []string{"ghost"} }), KindInvalid, `unknown group "ghost"`},
		{"rule no destinations", rule(func(r *model.PolicyRule) { r.Destinations = nil }), KindInvalid, "at least one group"},
		{"rule port range reversed", rule(func(r *model.PolicyRule) { r.Ports = []model.PortRange{{Start: 90, End: 80}} }), KindInvalid, "starts after it ends"},
		{"rule port zero", rule(func(r *model.PolicyRule) { r.Ports = []model.PortRange{{Start: 0, End: 80}} }), KindInvalid, "port 0"},
		{"rule ports with icmp", rule(func(r *model.PolicyRule) { r.Protocol = model.ProtoICMP }), KindInvalid, "need protocol tcp or udp"},
		{"rule ports with all", rule(func(r *model.PolicyRule) { r.Protocol = model.ProtoAll }), KindInvalid, "need protocol tcp or udp"},
		{"rule bad protocol", rule(func(r *model.PolicyRule) { r.Protocol = "sctp" }), KindInvalid, "unknown protocol"},
		{"rule bad action", rule(func(r *model.PolicyRule) { r.Action = "allow" }), KindInvalid, "unknown action"},
		{"route bad network", route(func(r *model.Route) { r.Network = netip.Prefix{} }), KindInvalid, "valid prefix"},
		{"route peer and groups", route(func(r *model.Route) { r.PeerGroups = []string{web.ID} }), KindInvalid, "exactly one of peer or peer_groups"},
		{"route neither", route(func(r *model.Route) { r.Peer = "" }), KindInvalid, "exactly one of peer or peer_groups"},
		{"route unknown peer", route(func(r *model.Route) { r.Peer = "ghost" }), KindInvalid, "unknown peer"},
		{"route unknown group", route(func(r *model.Route) { r.Groups = []string{"ghost"} }), KindInvalid, "unknown group"},
		{"route no distribution", route(func(r *model.Route) { r.Groups = nil }), KindInvalid, "at least one group"},
		{"ns no servers", nsg(func(n *model.NameserverGroup) { n.Nameservers = nil }), KindInvalid, "at least one nameserver"},
		{"ns port 0", nsg(func(n *model.NameserverGroup) {
			n.Nameservers = []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:0")}
		}), KindInvalid, "ip:port"},
		{"ns bad domain", nsg(func(n *model.NameserverGroup) { n.Domains = []string{"bad domain"} }), KindInvalid, "not a valid domain"},
		{"ns not primary no domains", nsg(func(n *model.NameserverGroup) { n.Domains = nil }), KindInvalid, "needs match domains"},
		{"zone bad domain", &model.DNSZone{Domain: "-x-.example"}, KindInvalid, "not a valid domain"},
		{"zone peer domain", &model.DNSZone{Domain: "petrel.internal."}, KindConflict, "peer domain"},
		{"record bad type", zone(model.DNSRecord{Name: "a", Type: "MX", Value: "x"}), KindInvalid, "unsupported type"},
		{"record A not v4", zone(model.DNSRecord{Name: "a", Type: "A", Value: "::1"}), KindInvalid, "not an IPv4"},
		{"record AAAA not v6", zone(model.DNSRecord{Name: "a", Type: "AAAA", Value: "1.2.3.4"}), KindInvalid, "not an IPv6"},
		{"record CNAME bad", zone(model.DNSRecord{Name: "a", Type: "CNAME", Value: "not a name"}), KindInvalid, "not a domain"},
		{"record TXT empty", zone(model.DNSRecord{Name: "a", Type: "TXT"}), KindInvalid, "TXT"},
		{"peer unknown", &model.Peer{ID: "ghost", Name: "x"}, KindNotFound, "not found"},
		{"peer bad label", &model.Peer{ID: peerID, DNSLabel: "Bad_Label"}, KindInvalid, "dns label"},
		{"setup key via Put", &model.SetupKey{Name: "x"}, KindInvalid, "cannot be saved"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := s.Snapshot(acct)
			_, err := s.Put(ctx, acct, tc.obj)
			wantKind(t, err, tc.want, tc.name)
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %q does not mention %q", err, tc.msg)
			}
			after, _ := s.Snapshot(acct)
			if len(after.Groups) != len(before.Groups) || len(after.Policies) != len(before.Policies) ||
				len(after.Routes) != len(before.Routes) || len(after.DNSZones) != len(before.DNSZones) {
				t.Fatal("refused Put changed the account")
			}
		})
	}

	// Valid objects are accepted and normalised.
	for _, obj := range []model.Object{rule(nil), route(nil), nsg(nil),
		zone(model.DNSRecord{Name: "www", Type: "a", Value: "10.1.2.3"}, model.DNSRecord{Name: "@", Type: "TXT", Value: "hello"})} {
		if _, err := s.Put(ctx, acct, obj); err != nil {
			t.Fatalf("valid %T refused: %v", obj, err)
		}
	}
	_, err = s.Put(ctx, acct, zone())
	wantKind(t, err, KindConflict, "duplicate zone")

	// Settings.
	wantKind(t, s.UpdateSettings(ctx, acct, model.Settings{DNSDomain: "not a domain"}), KindInvalid, "bad dns domain")
	wantKind(t, s.UpdateSettings(ctx, acct, model.Settings{DNSDomain: "lab.example"}), KindConflict, "dns domain equal to a zone")
	if err := s.UpdateSettings(ctx, acct, model.Settings{DNSDomain: "Mesh.Example."}); err != nil {
		t.Fatal(err)
	}
	snap, _ = s.Snapshot(acct)
	if snap.Settings.DNSDomain != "mesh.example" {
		t.Fatalf("dns domain %q", snap.Settings.DNSDomain)
	}

	// Setup key input.
	_, _, err = s.CreateSetupKey(ctx, acct, SetupKeyInput{Name: "k", UsageLimit: 3})
	wantKind(t, err, KindInvalid, "one-off key with limit 3")
	_, _, err = s.CreateSetupKey(ctx, acct, SetupKeyInput{Name: "k", AutoGroups: []string{"ghost"}})
	wantKind(t, err, KindInvalid, "unknown auto group")
	_, _, err = s.CreateSetupKey(ctx, acct, SetupKeyInput{})
	wantKind(t, err, KindInvalid, "empty key name")
}

func TestAdminDelete(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t))
	ctx := mgmttest.Ctx(t)
	acct := onlyAccount(t, s)
	_, plain := mustSetupKey(t, s, acct, SetupKeyInput{Reusable: true})
	resp, err := login(s, ctx, mgmttest.NewKey(t), plain, "a")
	if err != nil {
		t.Fatal(err)
	}
	peerID := resp.GetPeerConfig().GetPeerId()
	g := mustGroup(t, s, acct, "ops", peerID)
	snap, _ := s.Snapshot(acct)
	all := allGroup(snap)
	pol, err := s.Put(ctx, acct, &model.Policy{Name: "ops-ssh", Enabled: true, Rules: []model.PolicyRule{{
		Sources: []string{g.ID}, Destinations: []string{all.ID}, Protocol: model.ProtoTCP, Ports: []model.PortRange{{Start: 22, End: 22}}}}})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Delete(ctx, acct, model.KindGroup, g.ID)
	wantKind(t, err, KindConflict, "delete group in use")
	if !strings.Contains(err.Error(), `policy "ops-ssh"`) {
		t.Fatalf("error does not name the policy: %v", err)
	}
	wantKind(t, s.Delete(ctx, acct, model.KindGroup, all.ID), KindInvalid, "delete All")
	wantKind(t, s.Delete(ctx, acct, model.KindPolicy, "ghost"), KindNotFound, "delete unknown policy")
	if err := s.Delete(ctx, acct, model.KindPolicy, pol.ObjectID()); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, acct, model.KindGroup, g.ID); err != nil {
		t.Fatalf("delete unused group: %v", err)
	}
	// A routing peer: deleting it removes it from groups and its routes.
	g2 := mustGroup(t, s, acct, "ops2", peerID)
	rt, err := s.Put(ctx, acct, &model.Route{Network: netip.MustParsePrefix("10.9.0.0/16"), Peer: peerID, Groups: []string{all.ID}, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, acct, model.KindPeer, peerID); err != nil {
		t.Fatal(err)
	}
	snap, _ = s.Snapshot(acct)
	if len(snap.Peers) != 0 || len(snap.Groups[g2.ID].PeerIDs) != 0 || len(allGroup(snap).PeerIDs) != 0 || snap.Routes[rt.ObjectID()] != nil {
		t.Fatalf("peer deletion left references: groups %+v routes %d", snap.Groups[g2.ID], len(snap.Routes))
	}
	// The key of a deleted peer must register again.
	_, err = login(s, ctx, mgmttest.NewKey(t), "", "x")
	wantKind(t, err, KindUnauthenticated, "login without key")
}
