package dns

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"time"
)

// DialFunc creates a connected socket. network is "udp" or "tcp"; addr is
// "host:port". It has the signature of (*net.Dialer).DialContext.
type DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// Config is read once by New. Only Listen, Original and Dial are required in
// production; tests hand fakes for Dial and Clock.
type Config struct {
	// Listen lists the addresses to serve on, UDP and TCP on each, e.g. the
	// overlay IP port 53 (TUN mode) or 127.0.0.1:0 (netstack mode). Port 0
	// picks one free port shared by UDP and TCP.
	Listen []netip.AddrPort
	// Original lists the host's pre-Petrel nameservers, captured before
	// resolv.conf was changed. They feed the bypass resolver (after dropping
	// loopback, unspecified and our own addresses) and the -100 handler
	// (after dropping our own addresses).
	Original []netip.AddrPort
	// Dial creates control-plane (marked) sockets. It is used by the bypass
	// resolver only, and by nameserver groups unless GroupDial is set. nil =
	// a plain net.Dialer (tests, tools).
	Dial DialFunc
	// OriginalDial creates the sockets of the original-nameserver handler
	// (priority -100): ordinary host sockets that follow the host's routes,
	// so that with an exit node other programs' queries go through the
	// tunnel (or are dropped by the kill switch), never around it. nil = a
	// plain net.Dialer.
	OriginalDial DialFunc
	// GroupDial, if set, creates the sockets of nameserver-group upstreams
	// (priorities 50 and 1). Groups may sit behind overlay routes or, in
	// netstack mode, be reachable only through the netstack, which marked
	// host sockets cannot reach. nil = Dial. (Addition to the brief's API.)
	GroupDial DialFunc
	// Clock returns the current time; nil = time.Now. It drives cache ages,
	// refresh back-off and upstream health; socket deadlines use real time.
	Clock func() time.Time
	// Logger receives the resolver's logs (component=dns); nil = discard.
	Logger *slog.Logger
	// CacheTTL is the age after which a management-domain cache entry is
	// stale (still served, refreshed in the background). 0 = 5 minutes.
	CacheTTL time.Duration
	// NoBypass disables the bypass resolver (debug knob): the cache then
	// resolves through the chain's upstream handlers, as when no usable
	// original nameserver exists.
	NoBypass bool
}

// Settings is the whole desired DNS state, computed by the engine from the
// network map. Apply may be called any number of times with identical
// Settings; each call converges to it.
type Settings struct {
	// Domain is the account DNS domain ("petrel.internal" when empty).
	Domain string
	// SearchDomain makes single-label names resolve under Domain.
	SearchDomain bool
	// Zones: Zones[0] is the peer zone (one A/AAAA record per peer; its
	// Domain defaults to Domain), then custom zones.
	Zones []Zone
	// Groups are the nameserver groups: primary ones (Primary, or Domains
	// empty or ".") at priority 1 and match-domain ones at priority 50.
	Groups []NameserverGroup
	// ServerDomains updates the management-domain cache with the same
	// partial semantics as ApplyServerDomains: only carried categories
	// change. The zero value changes nothing.
	ServerDomains ServerDomains
	// ManagementHost is the host of the management URL. "" leaves the
	// cached management host unchanged; an IP literal clears it (nothing to
	// resolve); a name replaces it.
	ManagementHost string
	// OverlayPrefix is the account's overlay range; the local zone answers
	// PTR queries for addresses inside it.
	OverlayPrefix netip.Prefix
}

// Zone is one locally served zone. Domain and record names are fully
// qualified (a missing trailing dot is added; a name without the zone
// suffix is taken as relative to the zone; "@" is the zone apex).
type Zone struct {
	Domain  string
	Records []Record
}

// Record is one resource record of a Zone. Type is A, AAAA, CNAME or TXT;
// Name may be a wildcard "*.x.zone.". TTL 0 means 300 seconds. Records that
// do not parse are skipped and counted in Status.
type Record struct {
	Name  string
	Type  string
	Value string
	TTL   uint32
}

// NameserverGroup is a set of upstream servers tried in order. A group is
// primary when Primary is set or Domains is empty or only "."; its other
// domains, if any, are match domains.
type NameserverGroup struct {
	ID      string
	Servers []netip.AddrPort
	Domains []string
	Primary bool
}

// DomainCategory is a bit set of server-domain categories.
type DomainCategory uint8

// The server-domain categories of the management's ServerDomains message.
const (
	CategoryManagement DomainCategory = 1 << iota
	CategorySignal
	CategoryRelayPoolRoots
	CategorySTUN

	// AllCategories marks an update that carries every category (a full
	// ServerConfig from the network map).
	AllCategories = CategoryManagement | CategorySignal | CategoryRelayPoolRoots | CategorySTUN
)

// ServerDomains are the control-plane names of the management-domain cache,
// by category. An update replaces only the categories it carries.
//
// A category is carried when its bit is set in Has OR its slice is non-nil.
// So: nil slice and no bit = not carried (left as it is); a non-nil empty
// slice, or a set bit with a nil slice, = carried and now empty. The bit
// exists because nil and empty are easy to confuse in transit (proto3
// repeated fields decode both as nil): the engine sets Has = AllCategories
// when the map carries a ServerDomains message.
type ServerDomains struct {
	Management     []string       `json:"management,omitempty"`
	Signal         []string       `json:"signal,omitempty"`
	RelayPoolRoots []string       `json:"relay_pool_roots,omitempty"`
	STUN           []string       `json:"stun,omitempty"`
	Has            DomainCategory `json:"has,omitempty"`
}

// carries reports whether d carries category c, and its names.
func (d ServerDomains) carries(c DomainCategory) ([]string, bool) {
	var s []string
	switch c {
	case CategoryManagement:
		s = d.Management
	case CategorySignal:
		s = d.Signal
	case CategoryRelayPoolRoots:
		s = d.RelayPoolRoots
	case CategorySTUN:
		s = d.STUN
	}
	return s, d.Has&c != 0 || s != nil
}

var categories = [...]DomainCategory{CategoryManagement, CategorySignal, CategoryRelayPoolRoots, CategorySTUN}
