package management

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"petrel/internal/keys"
	"petrel/internal/oidctest"
	"petrel/management/identity"
	"petrel/management/internal/mgmttest"
	"petrel/management/model"
	"petrel/proto/managementpb"
)

// idp starts a real OpenID provider (internal/oidctest) with alice (eng,
// owner by email) and bob (eng, ops), and a service that trusts it.
func idp(t *testing.T, b backend, opts ...svcOpt) (*Service, *oidctest.Provider, *testClock) {
	t.Helper()
	p := oidctest.Start(t, oidctest.Config{Users: []oidctest.User{
		{Subject: "alice", Email: "alice@example.com", EmailVerified: true, Name: "Alice", Groups: []string{"eng"}},
		{Subject: "bob", Email: "bob@example.com", EmailVerified: true, Name: "Bob", Groups: []string{"eng", "ops"}},
	}})
	v, err := identity.New(mgmttest.Ctx(t), identity.Config{Issuer: p.Issuer(), ClientID: p.ClientID(),
		GroupsClaim: p.GroupsClaim(), HTTPClient: p.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	opts = append([]svcOpt{func(c *Config) {
		c.Now = clk.Now
		c.Identity = &IdentityConfig{Verifier: v, Issuer: p.Issuer(), ClientID: p.ClientID(),
			Scopes: []string{"openid", "email", p.GroupsScope()}, OwnerEmails: []string{"alice@example.com"}}
	}}, opts...)
	s, _ := startService(t, b.Open(t), opts...)
	return s, p, clk
}

var mintSeq atomic.Int64

// mint issues an ID token for subject as the provider would for a new
// sign-in (a fresh jti: two sign-ins in one second differ, as a real
// provider's at_hash makes them).
func mint(t *testing.T, p *oidctest.Provider, subject string) string {
	return p.Mint(t, oidctest.Token{Subject: subject, Claims: map[string]any{"jti": fmt.Sprint("t", mintSeq.Add(1))}})
}

func userLoginReq(jwt, host string) *managementpb.LoginRequest {
	return &managementpb.LoginRequest{Jwt: jwt, Hostname: host, Meta: &managementpb.PeerMeta{Hostname: host, Os: "linux"}}
}

func groupByName(a *model.Account, name string) *model.Group {
	for _, g := range a.Groups {
		if g.Name == name {
			return g
		}
	}
	return nil
}

func has(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func TestUserLoginRegistersAndSyncsGroups(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s, p, _ := idp(t, b)
		ctx := mgmttest.Ctx(t)
		acct := onlyAccount(t, s)
		if si := s.SignIn(); si.GetIssuer() != p.Issuer() || si.GetClientId() != p.ClientID() {
			t.Fatalf("SignIn = %v", si)
		}
		k := mgmttest.NewKey(t)
		resp, err := s.Login(ctx, k.Public(), userLoginReq(mint(t, p, "bob"), "bobs-laptop"))
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		a, _ := s.Snapshot(acct)
		peer := a.Peers[resp.GetPeerConfig().GetPeerId()]
		if peer == nil || peer.UserID == "" || peer.DNSLabel != "bobs-laptop" {
			t.Fatalf("peer = %+v", peer)
		}
		u := a.Users[peer.UserID]
		if u == nil || u.Email != "bob@example.com" || u.Role != model.RoleUser || u.Subject != "bob" {
			t.Fatalf("user = %+v", u)
		}
		for _, name := range []string{"eng", "ops"} {
			g := groupByName(a, name)
			if g == nil || !g.IdPManaged || !has(g.PeerIDs, peer.ID) || !has(u.Groups, g.ID) {
				t.Fatalf("group %s = %+v, user groups %v", name, g, u.Groups)
			}
		}
		ev, err := s.ListEvents(ctx, acct, model.EventFilter{Actor: "user:" + u.ID})
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, e := range ev {
			actions = append(actions, e.Action)
		}
		if got := strings.Join(actions, " "); got != "peer.register group.create group.create" && got != "group.create group.create peer.register" {
			t.Fatalf("events = %q", got)
		}

		// The IdP drops bob from ops: the next login takes his peer out
		// of ops and keeps it in eng.
		p.SetGroups(t, "bob", []string{"eng"})
		if _, err := s.Login(ctx, k.Public(), userLoginReq(mint(t, p, "bob"), "bobs-laptop")); err != nil {
			t.Fatalf("second login: %v", err)
		}
		a, _ = s.Snapshot(acct)
		if g := groupByName(a, "ops"); has(g.PeerIDs, peer.ID) {
			t.Fatalf("peer still in ops after the IdP removed bob: %v", g.PeerIDs)
		}
		if g := groupByName(a, "eng"); !has(g.PeerIDs, peer.ID) {
			t.Fatalf("peer left eng: %v", g.PeerIDs)
		}
		if len(a.Users) != 1 || len(a.Peers) != 1 {
			t.Fatalf("users %d peers %d after re-login, want 1 and 1", len(a.Users), len(a.Peers))
		}

		// alice is an owner by her email; her machine cannot be claimed by bob.
		ka := mgmttest.NewKey(t)
		if _, err := s.Login(ctx, ka.Public(), userLoginReq(mint(t, p, "alice"), "alices-pc")); err != nil {
			t.Fatal(err)
		}
		_, err = s.Login(ctx, ka.Public(), userLoginReq(mint(t, p, "bob"), "alices-pc"))
		wantKind(t, err, KindPermission, "bob signing in on alice's machine")
		a, _ = s.Snapshot(acct)
		for _, u := range a.Users {
			if u.Email == "alice@example.com" && u.Role != model.RoleOwner {
				t.Fatalf("alice role = %s, want owner", u.Role)
			}
		}
	})
}

// TestUserLoginRefusesBadTokens: every bad token is refused with a clear
// error and changes nothing (no user, no peer, no group, no event).
func TestUserLoginRefusesBadTokens(t *testing.T) {
	s, p, _ := idp(t, sqliteBackend(t))
	ctx := mgmttest.Ctx(t)
	acct := onlyAccount(t, s)
	good := mint(t, p, "alice")
	k := mgmttest.NewKey(t)
	if _, err := s.Login(ctx, k.Public(), userLoginReq(good, "first")); err != nil {
		t.Fatal(err)
	}
	// The same machine may present its token again (its reply was lost).
	if _, err := s.Login(ctx, k.Public(), userLoginReq(good, "first")); err != nil {
		t.Fatalf("retry of the same sign-in from the same machine: %v", err)
	}
	before, _ := s.Snapshot(acct)
	now := time.Now()
	cases := []struct {
		name, token, want string
	}{
		{"replayed by another machine", good, "used by another machine"},
		{"replayed re-encoded", reencoded(good), "used by another machine"},
		{"expired", p.Mint(t, oidctest.Token{Subject: "alice", IssuedAt: now.Add(-3 * time.Hour), Expiry: now.Add(-2 * time.Hour)}), "expired"},
		{"wrong audience", p.Mint(t, oidctest.Token{Subject: "alice", Audience: []string{"someone-else"}}), "another client"},
		{"wrong issuer", p.Mint(t, oidctest.Token{Subject: "alice", Issuer: "https://evil.example"}), "another issuer"},
		{"unsigned", p.Mint(t, oidctest.Token{Subject: "alice", Signing: oidctest.SignNone}), "unsigned"},
		{"foreign key", p.Mint(t, oidctest.Token{Subject: "alice", Signing: oidctest.SignForeign}), "signature"},
		{"garbage", "not.a.jwt", "malformed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.Login(ctx, mgmttest.NewKey(t).Public(), userLoginReq(c.token, "intruder"))
			wantKind(t, err, KindUnauthenticated, c.name)
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not say %q", err, c.want)
			}
		})
	}
	after, _ := s.Snapshot(acct)
	if after.Version != before.Version || len(after.Users) != len(before.Users) || len(after.Peers) != len(before.Peers) {
		t.Fatalf("refused logins changed the account: version %d→%d users %d→%d peers %d→%d",
			before.Version, after.Version, len(before.Users), len(after.Users), len(before.Peers), len(after.Peers))
	}
}

// TestBlockedUserDisconnects: blocking ends the user's Sync streams at
// once with a needs-login error, drops the peer from others' maps, and
// refuses its logins until unblocked.
func TestBlockedUserDisconnects(t *testing.T) {
	s, p, _ := idp(t, sqliteBackend(t))
	ctx := mgmttest.Ctx(t)
	acct := onlyAccount(t, s)
	kb := mgmttest.NewKey(t)
	resp, err := s.Login(ctx, kb.Public(), userLoginReq(mint(t, p, "bob"), "bob"))
	if err != nil {
		t.Fatal(err)
	}
	bobPeer := resp.GetPeerConfig().GetPeerId()
	// A setup-key peer that sees everyone (an All↔All policy).
	_, plain := mustSetupKey(t, s, acct, SetupKeyInput{Reusable: true})
	ks := mgmttest.NewKey(t)
	if _, err := login(s, ctx, ks, plain, "server"); err != nil {
		t.Fatal(err)
	}
	snap, _ := s.Snapshot(acct)
	all := allGroup(snap).ID
	if _, err := s.Put(ctx, acct, &model.Policy{Name: "mesh", Enabled: true, Rules: []model.PolicyRule{{
		Sources: []string{all}, Destinations: []string{all}, Bidirectional: true}}}); err != nil {
		t.Fatal(err)
	}
	other := openStream(t, s, ks, nil)
	if m := other.next(t); !mapHasPeer(m.GetFull(), kb.Public()) {
		t.Fatal("server does not see bob before the block")
	}
	bob := openStream(t, s, kb, nil)
	bob.next(t)

	a, _ := s.Snapshot(acct)
	uid := a.Peers[bobPeer].UserID
	blocked := true
	if _, err := s.UpdateUser(ctx, acct, uid, UserUpdate{Blocked: &blocked}); err != nil {
		t.Fatal(err)
	}
	err = bob.ended(t)
	wantKind(t, err, KindPermission, "bob's stream after the block")
	if !strings.Contains(err.Error(), "blocked") {
		t.Fatalf("stream ended with %q, want a blocked message", err)
	}
	d := other.next(t).GetDelta()
	if d == nil || !has(d.GetRemovedPeers(), kb.Public().String()) {
		t.Fatalf("server's delta does not remove bob: %v", d)
	}
	_, err = s.Login(ctx, kb.Public(), userLoginReq(mint(t, p, "bob"), "bob"))
	wantKind(t, err, KindPermission, "blocked user's login")
	_, err = s.Login(ctx, kb.Public(), &managementpb.LoginRequest{})
	wantKind(t, err, KindPermission, "blocked user's peer re-authenticating")

	unblocked := false
	if _, err := s.UpdateUser(ctx, acct, uid, UserUpdate{Blocked: &unblocked}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Login(ctx, kb.Public(), &managementpb.LoginRequest{}); err != nil {
		t.Fatalf("login after unblock: %v", err)
	}
	if d := other.next(t).GetDelta(); d == nil || len(d.GetUpsertPeers()) == 0 {
		t.Fatalf("server's delta does not bring bob back: %v", d)
	}
}

func mapHasPeer(m *managementpb.NetworkMap, k keys.Public) bool {
	for _, rp := range m.GetPeers() {
		if rp.GetPublicKey() == k.String() {
			return true
		}
	}
	return false
}

// TestLoginExpiration: a user peer needs a new sign-in once its login is
// older than the account's login expiration; setup-key peers never do.
func TestLoginExpiration(t *testing.T) {
	s, p, clk := idp(t, sqliteBackend(t))
	ctx := mgmttest.Ctx(t)
	acct := onlyAccount(t, s)
	if err := s.UpdateSettings(ctx, acct, model.Settings{DNSDomain: model.DefaultDNSDomain, LoginExpiration: 30 * time.Second}); err == nil {
		t.Fatal("a 30 s login expiration was accepted")
	}
	if err := s.UpdateSettings(ctx, acct, model.Settings{DNSDomain: model.DefaultDNSDomain, LoginExpiration: time.Hour}); err != nil {
		t.Fatal(err)
	}
	ku := mgmttest.NewKey(t)
	if _, err := s.Login(ctx, ku.Public(), userLoginReq(mint(t, p, "alice"), "alice")); err != nil {
		t.Fatal(err)
	}
	_, plain := mustSetupKey(t, s, acct, SetupKeyInput{Reusable: true})
	ks := mgmttest.NewKey(t)
	if _, err := login(s, ctx, ks, plain, "server"); err != nil {
		t.Fatal(err)
	}
	stream := openStream(t, s, ku, nil)
	stream.next(t)

	clk.Advance(59 * time.Minute)
	if _, err := s.Login(ctx, ku.Public(), &managementpb.LoginRequest{}); err != nil {
		t.Fatalf("re-auth within the hour: %v", err)
	}
	clk.Advance(2 * time.Minute)
	_, err := s.Login(ctx, ku.Public(), &managementpb.LoginRequest{})
	wantKind(t, err, KindPermission, "re-auth after expiry")
	if !strings.Contains(err.Error(), "login expired") {
		t.Fatalf("error %q does not say login expired", err)
	}
	if _, err := s.Login(ctx, ks.Public(), &managementpb.LoginRequest{}); err != nil {
		t.Fatalf("setup-key peer after an hour: %v", err)
	}
	s.expireLogins()
	wantKind(t, stream.ended(t), KindPermission, "expired peer's stream")
	a, _ := s.Snapshot(acct)
	for _, pe := range a.Peers {
		if pe.Disabled != (pe.UserID != "") {
			t.Fatalf("peer %s disabled=%v (user %q)", pe.Name, pe.Disabled, pe.UserID)
		}
	}
	// Signing in again renews the login and enables the peer.
	if _, err := s.Login(ctx, ku.Public(), userLoginReq(mint(t, p, "alice"), "alice")); err != nil {
		t.Fatal(err)
	}
	a, _ = s.Snapshot(acct)
	for _, pe := range a.Peers {
		if pe.Disabled {
			t.Fatalf("peer %s still disabled after sign-in", pe.Name)
		}
	}
}

// TestAccessTokens: a personal access token authenticates as its user
// until revoked, at once; expired and unknown tokens are refused.
func TestAccessTokens(t *testing.T) {
	s, p, clk := idp(t, sqliteBackend(t))
	ctx := mgmttest.Ctx(t)
	acct := onlyAccount(t, s)
	k := mgmttest.NewKey(t)
	resp, err := s.Login(ctx, k.Public(), userLoginReq(mint(t, p, "bob"), "bob"))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := s.Snapshot(acct)
	uid := a.Peers[resp.GetPeerConfig().GetPeerId()].UserID
	tok, plain, err := s.CreateAccessToken(ctx, acct, uid, AccessTokenInput{Name: "ci", ExpiresIn: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(tok.TokenHash) != 0 || !strings.HasPrefix(plain, tok.Prefix) {
		t.Fatalf("token %+v (plain prefix %q)", tok, plain[:8])
	}
	pr, err := s.Authenticate(ctx, plain)
	if err != nil || pr.UserID != uid || pr.Role != model.RoleUser || pr.Via != "access-token" {
		t.Fatalf("Authenticate = %+v, %v", pr, err)
	}
	_, err = s.Authenticate(ctx, plain+"x")
	wantKind(t, err, KindUnauthenticated, "altered token")
	clk.Advance(2 * time.Hour)
	_, err = s.Authenticate(ctx, plain)
	wantKind(t, err, KindUnauthenticated, "expired token")
	_, plain2, err := s.CreateAccessToken(ctx, acct, uid, AccessTokenInput{Name: "ci2"})
	if err != nil {
		t.Fatal(err)
	}
	pr, err = s.Authenticate(ctx, plain2)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAccessToken(ctx, acct, uid, pr.TokenID); err != nil {
		t.Fatal(err)
	}
	_, err = s.Authenticate(ctx, plain2)
	wantKind(t, err, KindUnauthenticated, "revoked token")
	ev, err := s.ListEvents(ctx, acct, model.EventFilter{Action: "access_token."})
	if err != nil || len(ev) != 3 {
		t.Fatalf("access token events = %v, %v; want 3", ev, err)
	}
}

// TestAdminCannotActOnOwner: an admin may not block, delete or mint access
// tokens for an owner (a token acts with its user's rights); the admin
// token (owner rights) and owners may.
func TestAdminCannotActOnOwner(t *testing.T) {
	s, p, _ := idp(t, sqliteBackend(t))
	ctx := mgmttest.Ctx(t)
	acct := onlyAccount(t, s)
	ids := map[string]string{}
	for _, sub := range []string{"alice", "bob"} {
		resp, err := s.Login(ctx, mgmttest.NewKey(t).Public(), userLoginReq(p.Mint(t, oidctest.Token{Subject: sub}), sub))
		if err != nil {
			t.Fatal(err)
		}
		a, _ := s.Snapshot(acct)
		ids[sub] = a.Peers[resp.GetPeerConfig().GetPeerId()].UserID
	}
	admin := model.RoleAdmin
	if _, err := s.UpdateUser(ctx, acct, ids["bob"], UserUpdate{Role: &admin}); err != nil {
		t.Fatal(err)
	}
	asBob := WithPrincipal(ctx, Principal{AccountID: acct, Role: model.RoleAdmin, UserID: ids["bob"]})
	blocked := true
	_, err := s.UpdateUser(asBob, acct, ids["alice"], UserUpdate{Blocked: &blocked})
	wantKind(t, err, KindPermission, "admin blocking an owner")
	wantKind(t, s.DeleteUser(asBob, acct, ids["alice"]), KindPermission, "admin deleting an owner")
	_, _, err = s.CreateAccessToken(asBob, acct, ids["alice"], AccessTokenInput{Name: "steal"})
	wantKind(t, err, KindPermission, "admin minting an owner's token")
	if _, _, err := s.CreateAccessToken(asBob, acct, ids["bob"], AccessTokenInput{Name: "own"}); err != nil {
		t.Fatalf("own token: %v", err)
	}
	asAlice := WithPrincipal(ctx, Principal{AccountID: acct, Role: model.RoleOwner, UserID: ids["alice"]})
	if _, err := s.UpdateUser(asAlice, acct, ids["bob"], UserUpdate{Blocked: &blocked}); err != nil {
		t.Fatalf("owner blocking an admin: %v", err)
	}
}

// reencoded changes the unused low bits of the token's last base64url
// character: a different string whose signature decodes to the same bytes.
func reencoded(tok string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, tok[len(tok)-1])
	return tok[:len(tok)-1] + string(alphabet[last^1])
}

// TestIdPGroupsDoNotTakeOverAdminGroups: a provider group whose name (in
// any case) is an admin's group, or All, is ignored: the provider does
// not decide who is in groups it did not make.
func TestIdPGroupsDoNotTakeOverAdminGroups(t *testing.T) {
	s, p, _ := idp(t, sqliteBackend(t))
	ctx := mgmttest.Ctx(t)
	acct := onlyAccount(t, s)
	admins := mustGroup(t, s, acct, "OPS")
	p.SetGroups(t, "bob", []string{"ops", "ALL", "eng"})
	resp, err := s.Login(ctx, mgmttest.NewKey(t).Public(), userLoginReq(mint(t, p, "bob"), "bob"))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := s.Snapshot(acct)
	peer := resp.GetPeerConfig().GetPeerId()
	if g := a.Groups[admins.ID]; has(g.PeerIDs, peer) || g.IdPManaged {
		t.Fatalf("admin group taken over: %+v", g)
	}
	u := a.Users[a.Peers[peer].UserID]
	if len(u.Groups) != 1 || a.Groups[u.Groups[0]].Name != "eng" || len(a.Groups) != 3 { // All, OPS, eng
		t.Fatalf("user groups %v, account groups %d", u.Groups, len(a.Groups))
	}
}
