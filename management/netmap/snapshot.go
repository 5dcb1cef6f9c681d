package netmap

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"petrel/management/model"
	mpb "petrel/proto/managementpb"
)

// ErrUnknownPeer is returned by Map for a peer ID the snapshot does not hold.
var ErrUnknownPeer = errors.New("unknown peer")

// peerRecordTTL is the TTL of the peers' zone records.
const peerRecordTTL = 300

// Change says which objects differ between two account versions.
// Next also detects objects whose pointers changed (accounts are
// copy-on-write values), so a Change that forgets an object is not a
// correctness bug; it is a hint that spares Next a scan.
type Change struct {
	PeersAdded, PeersChanged, PeersRemoved            []string // peer IDs (PeersChanged: name/label/IP/key/meta)
	Groups, Policies, Routes, NameserverGroups, Zones []string // IDs of objects added/changed/removed
	Settings                                          bool
}

// peerEntry is the immutable, precomputed form of one peer.
type peerEntry struct {
	id     string
	ip     string // "100.64.0.5"
	sortKy string // "100.64.0.5/32": order of peers everywhere
	rp     *mpb.RemotePeer
	rec    *mpb.SimpleRecord
	self   *mpb.PeerConfig
	groups []string // sorted group IDs, including the All group
	sig    string   // groups joined: the key of the peer's view
}

// groupEntry holds a group's members sorted by address.
type groupEntry struct {
	id      string
	members []*peerEntry
	ips     []string     // aligned with members
	set     *mpb.PeerSet // all members: shared by every map whose peer sees them all
}

// snapSeq numbers snapshots (Snapshot.id); 0 is never used.
var snapSeq atomic.Uint64

// Snapshot indexes one account version. Immutable; safe for concurrent use.
type Snapshot struct {
	acct   *model.Account
	domain string // without trailing dot
	allID  string // ID of the group named model.AllGroupName, "" if none

	peers   map[string]*peerEntry
	sorted  []*peerEntry        // all peers by sortKy
	allIPs  []string            // aligned with sorted
	allRPs  []*mpb.RemotePeer   // aligned with sorted
	allRecs []*mpb.SimpleRecord // records of sorted (peers with one), same order
	allSet  *mpb.PeerSet        // the All group's full set (nil without an All group)
	groups  map[string]*groupEntry

	rules      []*rule
	groupRules map[string][]int // group ID → indexes into rules
	routes     []*route
	routerOf   map[string][]servedRoute // peer ID → routes it routes (by route ID)
	ns         []*nsGroup
	zones      []*mpb.CustomZone // custom zones, sorted
	views      map[string]*view  // sig → view

	// id is unique per snapshot (snapSeq). Set by Next: parentID, the id of
	// the snapshot it was derived from (an ID, not a pointer: a pointer
	// would keep every ancestor, and its indexes, alive for as long as the
	// newest snapshot lives), and the effective change.
	id         uint64
	parentID   uint64
	change     Change
	rebuilt    bool     // Next fell back to Build: every map may differ
	structural bool     // rules, routes or nameserver groups changed: views rebuilt
	touched    []string // peers added, removed or changed (sorted IDs)
}

// Build indexes an account. The caller never mutates a (or anything it
// points to) afterwards.
func Build(a *model.Account) *Snapshot {
	s := &Snapshot{id: snapSeq.Add(1), acct: a, domain: domainOf(a), allID: allGroupID(a)}
	s.peers = make(map[string]*peerEntry, len(a.Peers))
	memberOf := make(map[string][]string, len(a.Peers))
	for gid, g := range a.Groups {
		if gid == s.allID {
			continue
		}
		for _, pid := range g.PeerIDs {
			memberOf[pid] = append(memberOf[pid], gid)
		}
	}
	for id, p := range a.Peers {
		if !p.Disabled { // disabled peers are in no map
			s.peers[id] = s.newEntry(p, memberOf[id])
		}
	}
	s.sorted = make([]*peerEntry, 0, len(s.peers))
	for _, e := range s.peers {
		s.sorted = append(s.sorted, e)
	}
	slices.SortFunc(s.sorted, cmpEntry)
	s.indexAll()
	s.groups = make(map[string]*groupEntry, len(a.Groups))
	for gid, g := range a.Groups {
		if gid != s.allID {
			s.groups[gid] = s.newGroup(gid, g.PeerIDs)
		}
	}
	s.compileRules()
	s.compileRoutes()
	s.compileNS()
	s.compileZones()
	s.views = make(map[string]*view)
	s.buildViews(nil)
	return s
}

func domainOf(a *model.Account) string {
	d := strings.TrimSuffix(strings.ToLower(a.Settings.DNSDomain), ".")
	if d == "" {
		d = model.DefaultDNSDomain
	}
	return d
}

// allGroupID returns the ID of the implicit All group (smallest ID if
// several are named so).
func allGroupID(a *model.Account) string {
	id := ""
	for gid, g := range a.Groups {
		if g.Name == model.AllGroupName && (id == "" || gid < id) {
			id = gid
		}
	}
	return id
}

func cmpEntry(a, b *peerEntry) int {
	if c := strings.Compare(a.sortKy, b.sortKy); c != 0 {
		return c
	}
	return strings.Compare(a.id, b.id)
}

// indexAll fills the lists aligned with s.sorted.
func (s *Snapshot) indexAll() {
	s.allIPs = ipsOf(s.sorted)
	if s.allID != "" {
		s.allSet = &mpb.PeerSet{Id: s.allID, Ips: slices.Clip(s.allIPs)}
	}
	s.allRPs = make([]*mpb.RemotePeer, len(s.sorted))
	s.allRecs = make([]*mpb.SimpleRecord, 0, len(s.sorted))
	for i, e := range s.sorted {
		s.allRPs[i] = e.rp
		if e.rec != nil {
			s.allRecs = append(s.allRecs, e.rec)
		}
	}
}

func ipsOf(es []*peerEntry) []string {
	ips := make([]string, len(es))
	for i, e := range es {
		ips[i] = e.ip
	}
	return ips
}

// newEntry precomputes everything a map needs about p. groups are the IDs
// of the explicit groups holding p (any order, may repeat).
func (s *Snapshot) newEntry(p *model.Peer, groups []string) *peerEntry {
	ip := p.IP.String()
	bits := 32
	if p.IP.Is6() {
		bits = 128
	}
	host := ip + "/" + strconv.Itoa(bits)
	fqdn := ""
	if p.DNSLabel != "" {
		fqdn = p.DNSLabel + "." + s.domain
	}
	gs := make([]string, 0, len(groups)+1)
	gs = append(gs, groups...)
	if s.allID != "" {
		gs = append(gs, s.allID)
	}
	slices.Sort(gs)
	gs = slices.Compact(gs)
	e := &peerEntry{
		id: p.ID, ip: ip, sortKy: host, groups: gs, sig: strings.Join(gs, "\x00"),
		rp: &mpb.RemotePeer{PublicKey: p.PublicKey, AllowedIps: []string{host}, Fqdn: fqdn, Name: p.Name, PeerId: p.ID},
		self: &mpb.PeerConfig{
			Address: ip + "/" + strconv.Itoa(s.acct.Network.Bits()),
			Fqdn:    fqdn, DnsLabel: p.DNSLabel, PeerId: p.ID,
		},
	}
	if fqdn != "" && p.IP.IsValid() {
		typ := "A"
		if p.IP.Is6() {
			typ = "AAAA"
		}
		e.rec = &mpb.SimpleRecord{Name: fqdn + ".", Type: typ, Ttl: peerRecordTTL, Value: ip}
	}
	return e
}

func (s *Snapshot) newGroup(gid string, ids []string) *groupEntry {
	g := &groupEntry{id: gid}
	for _, pid := range ids {
		if e := s.peers[pid]; e != nil {
			g.members = append(g.members, e)
		}
	}
	slices.SortFunc(g.members, cmpEntry)
	g.members = slices.Compact(g.members)
	g.ips = ipsOf(g.members)
	g.set = &mpb.PeerSet{Id: gid, Ips: slices.Clip(g.ips)}
	return g
}

// inGroup reports whether e is a member of group gid.
func (s *Snapshot) inGroup(e *peerEntry, gid string) bool {
	_, ok := slices.BinarySearch(e.groups, gid)
	return ok
}

// members returns the members of gid (all peers for the All group).
func (s *Snapshot) members(gid string) ([]*peerEntry, []string) {
	if gid == s.allID && gid != "" {
		return s.sorted, s.allIPs
	}
	if g := s.groups[gid]; g != nil {
		return g.members, g.ips
	}
	return nil, nil
}

// fullSet returns the shared PeerSet holding every member of gid (an empty
// set for an unknown group).
func (s *Snapshot) fullSet(gid string) *mpb.PeerSet {
	if gid == s.allID && gid != "" {
		return s.allSet
	}
	if g := s.groups[gid]; g != nil {
		return g.set
	}
	return &mpb.PeerSet{Id: gid}
}

// intersects reports whether two sorted string slices share an element.
func intersects(a, b []string) bool {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch c := strings.Compare(a[i], b[j]); {
		case c == 0:
			return true
		case c < 0:
			i++
		default:
			j++
		}
	}
	return false
}

func sortedSet(xs []string) []string {
	out := slices.Clone(xs)
	slices.Sort(out)
	return slices.Compact(out)
}
