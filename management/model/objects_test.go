package model

import (
	"net/netip"
	"testing"
	"time"
)

// TestPutDeleteObjectEveryKind: every kind goes into its own map and
// comes out again; an unknown kind is reported.
func TestPutDeleteObjectEveryKind(t *testing.T) {
	a := NewAccount("a", netip.MustParsePrefix("100.64.0.0/16"), time.Now())
	objs := []Object{&Peer{ID: "1"}, &Group{ID: "1"}, &SetupKey{ID: "1"}, &Policy{ID: "1"}, &Route{ID: "1"},
		&NameserverGroup{ID: "1"}, &DNSZone{ID: "1"}, &AdminToken{ID: "1"}, &User{ID: "1"}, &AccessToken{ID: "1"}}
	sizes := func() []int {
		return []int{len(a.Peers), len(a.Groups), len(a.SetupKeys), len(a.Policies), len(a.Routes),
			len(a.NameserverGroups), len(a.DNSZones), len(a.AdminTokens), len(a.Users), len(a.AccessTokens)}
	}
	base := sizes()
	for i, o := range objs {
		if !a.PutObject(o) {
			t.Fatalf("PutObject(%T) refused", o)
		}
		if got := sizes(); got[i] != base[i]+1 {
			t.Fatalf("PutObject(%T): sizes %v, want map %d grown", o, got, i)
		}
		if !a.DeleteObject(o.ObjectKind(), "1") || sizes()[i] != base[i] {
			t.Fatalf("DeleteObject(%s) did not remove it", o.ObjectKind())
		}
	}
	if a.PutObject(nil) || a.DeleteObject("planet", "1") {
		t.Fatal("an unknown kind was accepted")
	}
}
