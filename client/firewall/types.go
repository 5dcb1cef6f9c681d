package firewall

import (
	"net/netip"
	"time"
)

// Direction says which side opens a flow a Rule governs.
type Direction uint8

const (
	// In is traffic from the rule's peers to this agent (or, forwarded, to a
	// network in Config.Routed).
	In Direction = iota
	// Out is traffic from this agent to the rule's peers.
	Out
)

func (d Direction) String() string {
	if d == Out {
		return "out"
	}
	return "in"
}

// Action is a rule's verdict.
type Action uint8

const (
	Accept Action = iota
	Drop
)

func (a Action) String() string {
	if a == Drop {
		return "drop"
	}
	return "accept"
}

// Proto selects the transport protocol a rule matches.
type Proto uint8

const (
	// All matches every protocol, including protocols without ports
	// (GRE, IPv6 packets with extension headers, non-first fragments) —
	// but only when the rule has no Ports.
	All Proto = iota
	TCP
	UDP
	// ICMP matches ICMPv4 and ICMPv6; Ports are ignored.
	ICMP
)

func (p Proto) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	case ICMP:
		return "icmp"
	}
	return "all"
}

// PortRange is an inclusive range of destination ports. End < Start is read
// as the single port Start (so {443, 0} is 443).
type PortRange struct{ Start, End uint16 }

// Rule allows or drops new flows between this agent and Peers.
type Rule struct {
	ID, PolicyID string
	Direction    Direction
	Action       Action
	Proto        Proto
	// Ports are destination ports (of the flow's opening packet); empty
	// means all ports. A rule with Ports matches only TCP and UDP packets
	// that carry ports. Ignored for ICMP.
	Ports []PortRange
	// Peers is the remote side: peers' overlay /32s (/128s) and/or network
	// prefixes (routed traffic). This agent's own addresses (Config.Self)
	// are ignored when listed as single addresses.
	Peers []netip.Prefix
}

// Config is the whole desired firewall state; Apply converges to it.
type Config struct {
	// Self are this agent's own overlay addresses; packets to/from anything
	// else are "routed".
	Self []netip.Prefix
	// Routed are the networks this agent forwards for others (routing peer,
	// exit node: 0.0.0.0/0). Inbound packets to them are filtered by In
	// rules on their source.
	Routed []netip.Prefix
	Rules  []Rule
}

// PeerCounters counts packets per remote address.
type PeerCounters struct {
	InAllowed, InDropped, OutAllowed, OutDropped uint64
}

// Decision is Trace's answer.
type Decision struct {
	Allowed          bool
	RuleID, PolicyID string // the deciding rule; empty if none
	Reason           string
}

// Option configures New.
type Option func(*options)

type options struct {
	now        func() time.Time
	gcInterval time.Duration
	maxTotal   int
	maxPerPeer int
}

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithGCInterval sets how often the conntrack GC goroutine sweeps expired
// entries (default 30 s); d <= 0 starts no goroutine (entries then expire
// lazily only).
func WithGCInterval(d time.Duration) Option { return func(o *options) { o.gcInterval = d } }

// WithLimits bounds the conntrack table: total entries and entries per
// remote address (defaults 65,536 and 4,096).
func WithLimits(total, perRemote int) Option {
	return func(o *options) { o.maxTotal, o.maxPerPeer = total, perRemote }
}
