package dns

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

// Point 5: partial updates replace only the categories they carry, drop
// names that left (never the management host) and resolve new names at
// once, concurrently.
func TestServerDomainsPartialUpdate(t *testing.T) {
	rig := newCacheRig(t, nil)
	for _, n := range []string{"mgmt", "signal", "signal2", "relay", "eu.relay", "stun", "a", "b", "c"} {
		rig.set(n+".example.", "192.0.2.1")
	}
	rig.r.Apply(Settings{
		Groups:         []NameserverGroup{{ID: "p", Servers: []netip.AddrPort{netip.MustParseAddrPort(primaryNS)}}},
		ManagementHost: "mgmt.example",
		ServerDomains: ServerDomains{Has: AllCategories, Management: []string{"mgmt.example"}, Signal: []string{"signal.example"},
			RelayPoolRoots: []string{"relay.example"}, STUN: []string{"stun.example"}},
	})
	rig.waitIdle(t)
	ask(t, rig.r, "eu.relay.example", mdns.TypeA) // an on-demand entry
	names := func() []string { return rig.r.Status().ServerNames }
	if got := names(); !slices.Equal(got, []string{"mgmt.example.", "relay.example.", "signal.example.", "stun.example."}) {
		t.Fatalf("names %v", got)
	}

	// Signal only: replaced; everything else unchanged.
	rig.r.ApplyServerDomains(ServerDomains{Signal: []string{"signal2.example"}})
	rig.waitIdle(t)
	if got := names(); !slices.Equal(got, []string{"mgmt.example.", "relay.example.", "signal2.example.", "stun.example."}) {
		t.Fatalf("after signal update %v", got)
	}
	if rig.bypassQ.get("signal2.example. A") != 1 || rig.bypassQ.get("signal2.example. AAAA") != 1 {
		t.Fatal("new name not resolved at once")
	}
	for _, c := range rig.r.Status().Cache {
		if c.Name == "signal.example." {
			t.Fatal("entry of a removed name kept")
		}
	}
	if _, info := ask(t, rig.r, "signal.example", mdns.TypeA); info.Handler == "mgmt-cache" {
		t.Fatal("removed name still answered by the cache")
	}

	// Management carried and empty: the management host stays.
	rig.r.ApplyServerDomains(ServerDomains{Management: []string{}})
	if got := names(); !slices.Contains(got, "mgmt.example.") {
		t.Fatalf("management host removed: %v", got)
	}
	if _, info := ask(t, rig.r, "mgmt.example", mdns.TypeA); !strings.HasPrefix(info.How, "cache fresh") {
		t.Fatalf("management host entry lost: %+v", info)
	}

	// Roots carried by the Has bit alone: pool and its on-demand entries go.
	if _, info := ask(t, rig.r, "eu.relay.example", mdns.TypeA); !strings.HasPrefix(info.How, "cache fresh") {
		t.Fatalf("on-demand entry: %+v", info)
	}
	rig.r.ApplyServerDomains(ServerDomains{Has: CategoryRelayPoolRoots})
	if _, info := ask(t, rig.r, "eu.relay.example", mdns.TypeA); info.Handler != "group:p" {
		t.Fatalf("subdomain of a removed root: %+v", info)
	}
	if got := names(); !slices.Equal(got, []string{"mgmt.example.", "signal2.example.", "stun.example."}) {
		t.Fatalf("after roots removal %v", got)
	}

	// New names are resolved concurrently: all six lookups are in flight
	// together while upstream is held.
	rig.hold()
	rig.r.ApplyServerDomains(ServerDomains{STUN: []string{"a.example", "b.example", "c.example"}})
	eventually(t, "six concurrent lookups", func() bool {
		return rig.bypassQ.get("a.example. A")+rig.bypassQ.get("b.example. A")+rig.bypassQ.get("c.example. A")+
			rig.bypassQ.get("a.example. AAAA")+rig.bypassQ.get("b.example. AAAA")+rig.bypassQ.get("c.example. AAAA") == 6
	})
	rig.release()
	rig.waitIdle(t)
	if got := names(); !slices.Equal(got, []string{"a.example.", "b.example.", "c.example.", "mgmt.example.", "signal2.example."}) {
		t.Fatalf("after stun update %v", got)
	}
}

// Point 1: IP literals are ignored; a management host that changes to an
// IP literal is dropped.
func TestManagementHostIPLiteralIgnored(t *testing.T) {
	rig := newCacheRig(t, nil)
	rig.set("mgmt.example.", "192.0.2.1")
	rig.r.Apply(Settings{ManagementHost: "mgmt.example", ServerDomains: ServerDomains{Signal: []string{"10.0.0.1", "[2001:db8::1]"}}})
	rig.waitIdle(t)
	if got := rig.r.Status().ServerNames; !slices.Equal(got, []string{"mgmt.example."}) {
		t.Fatalf("names %v", got)
	}
	rig.r.Apply(Settings{ManagementHost: "10.1.2.3"})
	if got := rig.r.Status().ServerNames; len(got) != 0 {
		t.Fatalf("names %v", got)
	}
}
