package ui_test

import (
	"fmt"
	"html"
	"regexp"
	"strings"
	"testing"

	"petrel/internal/keys"
	"petrel/management/model"
	"petrel/proto/managementpb"
)

func pathReport(t *testing.T, e *env, from keys.Private, es ...*managementpb.PeerPathReport) {
	t.Helper()
	if err := e.svc.ReportPeers(from.Public(), &managementpb.ReportPeersRequest{Full: true, Peers: es}); err != nil {
		t.Fatal(err)
	}
}

func entry(k keys.Private, st managementpb.PeerPathState, reason string) *managementpb.PeerPathReport {
	pk := k.Public()
	return &managementpb.PeerPathReport{PublicKey: pk[:], State: st, Reason: reason}
}

// cellState is the state a matrix page shows for row a, column b ("" when
// the cell is not on the page).
func cellState(body, a, b string) string {
	m := regexp.MustCompile(fmt.Sprintf(`<td id="cell-%s-%s" class="cell ([a-z0-9-]+)"`, a, b)).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

// meshPolicy connects the peers ids (and no other) both ways.
func (e *env) meshPolicy(ids ...string) {
	e.t.Helper()
	g, err := e.svc.Put(e.ctx(), e.acct, &model.Group{Name: "mesh", PeerIDs: ids})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, p := range e.snapshot().Policies { // only ours decides
		if err := e.svc.Delete(e.ctx(), e.acct, model.KindPolicy, p.ID); err != nil {
			e.t.Fatal(err)
		}
	}
	gid := g.(*model.Group).ID
	if _, err := e.svc.Put(e.ctx(), e.acct, &model.Policy{Name: "mesh", Enabled: true, Rules: []model.PolicyRule{{
		Sources: []string{gid}, Destinations: []string{gid}, Bidirectional: true}}}); err != nil {
		e.t.Fatal(err)
	}
}

const (
	p2p     = managementpb.PeerPathState_PEER_PATH_STATE_P2P
	relayed = managementpb.PeerPathState_PEER_PATH_STATE_RELAYED
)

func TestMatrixPage(t *testing.T) {
	e := newEnv(t)
	key := e.setupKey()
	a, ka := e.addPeer(key, "alpha")
	b, kb := e.addPeer(key, "bravo")
	c, kc := e.addPeer(key, "charlie")
	d, _ := e.addPeer(key, "delta")
	e.meshPolicy(a.ID, b.ID, c.ID)
	e.connect(ka)
	downB := e.connect(kb)
	e.connect(kc)
	pathReport(t, e, ka, entry(kb, p2p, ""), entry(kc, relayed, xss[0]))
	pathReport(t, e, kb, entry(ka, p2p, ""))
	pathReport(t, e, kc, entry(ka, relayed, xss[0]))

	br := e.browser()
	br.signIn(e.admin)
	r := br.get("/ui/matrix")
	r.want(t, 200, "Connectivity", `id="legend"`, "&lt;img src=x onerror=alert(1)&gt;")
	if strings.Contains(r.body, xss[0]) {
		t.Fatal("the relay reason is rendered as markup")
	}
	for _, w := range []struct{ a, b, state string }{
		{a.ID, b.ID, "p2p"}, {b.ID, a.ID, "p2p"}, {a.ID, c.ID, "relayed"}, {c.ID, a.ID, "relayed"},
		{b.ID, c.ID, "unknown"}, {a.ID, d.ID, "no-policy"}, {d.ID, c.ID, "no-policy"}, {a.ID, a.ID, "self"},
	} {
		if got := cellState(r.body, w.a, w.b); got != w.state {
			t.Errorf("cell %s→%s = %q, want %q", w.a, w.b, got, w.state)
		}
	}
	downB()
	r = br.get("/ui/matrix/cells")
	if got := cellState(r.body, a.ID, b.ID); got != "down" {
		t.Errorf("cell after bravo disconnected = %q, want down", got)
	}
	// Filters page the matrix on the server.
	r = br.get("/ui/matrix?q=alpha")
	if cellState(r.body, a.ID, a.ID) != "self" || strings.Contains(r.body, "bravo") {
		t.Error("the filtered matrix shows other peers")
	}
	br.get("/ui/matrix?status=sideways").want(t, 400, "status")
}

// TestMatrixUserSeesOwnPairs: a user's matrix holds only their own peers.
func TestMatrixUserSeesOwnPairs(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user("alice", model.RoleUser), e.user("bob", model.RoleUser)
	a1, _ := e.userPeer(alice, "alice-laptop")
	theirs, _ := e.userPeer(bob, "bob-laptop")
	gw, _ := e.addPeer(e.setupKey(), "gateway")
	e.meshPolicy(a1.ID, theirs.ID, gw.ID)
	br := e.browser()
	br.signIn(alice.pat)
	for _, path := range []string{"/ui/matrix", "/ui/matrix/cells", "/ui/matrix?q=laptop"} {
		r := br.get(path)
		r.want(t, 200, "alice-laptop")
		for _, other := range []string{"bob-laptop", "gateway", theirs.ID, gw.ID} {
			if strings.Contains(r.body, other) {
				t.Fatalf("alice's %s shows %q", path, other)
			}
		}
	}
	if got := cellState(br.get("/ui/matrix").body, a1.ID, a1.ID); got != "self" {
		t.Errorf("alice's own cell = %q, want self", got)
	}
}

// TestMatrixStreamPagePeersOnly: a matrix page's event stream (its URL
// from the page) sends "paths" only for peers on the page — a report of a
// peer on another page or filtered out refetches no cells — and follows
// the page as its peers change; the plain stream still names every peer.
func TestMatrixStreamPagePeersOnly(t *testing.T) {
	e := newEnv(t)
	key := e.setupKey()
	a, ka := e.addPeer(key, "alpha")
	b, kb := e.addPeer(key, "bravo")
	c, kc := e.addPeer(key, "charlie")
	e.meshPolicy(a.ID, b.ID, c.ID)
	pg, err := e.svc.Put(e.ctx(), e.acct, &model.Group{Name: "page", PeerIDs: []string{a.ID, b.ID}})
	if err != nil {
		t.Fatal(err)
	}
	page := pg.(*model.Group)
	e.connect(ka)
	e.connect(kb)
	e.connect(kc)

	br := e.browser()
	br.signIn(e.admin)
	r := br.get("/ui/matrix?group=" + page.ID)
	r.want(t, 200, "Connectivity")
	m := regexp.MustCompile(`sse-connect="([^"]+)"`).FindStringSubmatch(r.body)
	if m == nil {
		t.Fatal("no sse-connect on the matrix page")
	}
	url := html.UnescapeString(m[1])
	if !strings.Contains(url, "matrix=1") || !strings.Contains(url, page.ID) {
		t.Fatalf("matrix stream URL %q does not carry the page", url)
	}
	ms, plain := br.streamAt(url), br.stream()

	// charlie is not on the page: its report reaches the plain stream only.
	pathReport(t, e, kc, entry(ka, p2p, ""))
	pathReport(t, e, ka, entry(kc, p2p, ""))
	if name, data := ms.next(); name != "paths" || data != a.ID {
		t.Fatalf("matrix stream: %q %q, want paths %s only", name, data, a.ID)
	}
	if name, data := plain.next(); name != "paths" || !strings.Contains(data, c.ID) {
		t.Fatalf("plain stream: %q %q, want paths naming %s", name, data, c.ID)
	}

	// charlie joins the page's group: now its reports refetch the page.
	page = &model.Group{ID: page.ID, Name: page.Name, PeerIDs: []string{a.ID, b.ID, c.ID}}
	if _, err := e.svc.Put(e.ctx(), e.acct, page); err != nil {
		t.Fatal(err)
	}
	pathReport(t, e, kc, entry(ka, relayed, "forced"))
	if name, data := ms.next(); name != "paths" || data != c.ID {
		t.Fatalf("matrix stream after charlie joined the page: %q %q, want paths %s", name, data, c.ID)
	}
}

// TestFilterFormsSubmitToTheirPage: the peers and matrix pages share one
// filter form (layout.html "peer-filters"); each must submit to, and clear
// to, its own page.
func TestFilterFormsSubmitToTheirPage(t *testing.T) {
	e := newEnv(t)
	br := e.browser()
	br.signIn(e.admin)
	for _, page := range []string{"/ui/peers", "/ui/matrix"} {
		r := br.get(page + "?q=x")
		r.want(t, 200, `<form class="filters card" method="get" action="`+page+`"`, `href="`+page+`">Clear`)
	}
}
