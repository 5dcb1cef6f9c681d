package ui_test

import (
	"regexp"
	"strings"
	"testing"
)

// connState is the pair state the peer page's connections table shows for
// the other peer ("" when it is not listed).
func connState(body, other string) string {
	m := regexp.MustCompile(`<tr id="conn-` + other + `" data-state="([a-z0-9-]+)"`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

// TestPeerPageConnections: a peer's page lists the peers the policy
// connects it to (not the others), with the pair's state, both agents'
// views (path, relay reason as text, latency, the direct path's
// candidates and the last handshake) and problems first; a peer
// that goes offline turns its pair down; a user sees only their own.
func TestPeerPageConnections(t *testing.T) {
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
	fast := entry(kb, p2p, "")
	fast.LatencyUs = 1250
	fast.LocalCandidate, fast.RemoteCandidate, fast.HandshakeAgeMs = "srflx 203.0.113.7:51820", "host "+xss[0], 12000
	slow := entry(kc, relayed, xss[0])
	slow.LocalCandidate = "host 10.9.9.9:1" // a relayed pair has no direct path: not kept
	pathReport(t, e, ka, fast, slow)
	pathReport(t, e, kb, entry(ka, p2p, ""))

	br := e.browser()
	br.signIn(e.admin)
	r := br.get("/ui/peers/" + a.ID)
	r.want(t, 200, `id="connections"`, "1.25 ms", "&lt;img src=x onerror=alert(1)&gt;", "no report",
		"srflx 203.0.113.7:51820 ↔ host &lt;img", "handshake 12 s ago")
	if strings.Contains(r.body, xss[0]) {
		t.Fatal("the relay reason or a candidate is rendered as markup")
	}
	if strings.Contains(r.body, "10.9.9.9") {
		t.Fatal("a relayed pair shows a direct-path candidate")
	}
	for other, want := range map[string]string{b.ID: "p2p", c.ID: "relayed", d.ID: "", a.ID: ""} {
		if got := connState(r.body, other); got != want {
			t.Errorf("pair alpha–%s = %q, want %q", other, got, want)
		}
	}
	if strings.Index(r.body, `id="conn-`+c.ID) > strings.Index(r.body, `id="conn-`+b.ID) {
		t.Error("the relayed pair is listed after the direct one")
	}
	downB()
	var last string
	waitUntil(t, "bravo's pair down", func() bool {
		last = connState(br.get("/ui/peers/"+a.ID).body, b.ID)
		return last == "down"
	}, &last)
	br.get("/ui/peers/"+d.ID).want(t, 200, "The policy connects this peer to no other.")
}
