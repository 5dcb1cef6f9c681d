package dns

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	mdns "github.com/miekg/dns"
)

const (
	// maxCNAMEDepth bounds CNAME chains (loops end here too).
	maxCNAMEDepth    = 8
	defaultRecordTTL = 300
	negativeTTL      = 60
	defaultDomain    = "petrel.internal."
)

// zoneData is one compiled zone. It is immutable once built.
type zoneData struct {
	origin string
	soa    *mdns.SOA
	rrs    map[string][]mdns.RR // owner (canonical) → records
	exists map[string]bool      // owners and their ancestors up to origin (empty non-terminals)
}

// localZone is the compiled local zone: the peer zone, custom zones and the
// overlay reverse zone. It is built by Apply and never modified afterwards.
//
// CNAME decision: chains are followed up to maxCNAMEDepth links. Targets
// inside any local zone are resolved locally; targets outside every local
// zone are resolved through the upstream part of the chain (nameserver
// groups, then original nameservers) and their answer is appended. If the
// upstream gives nothing, the CNAME chain is returned alone (NOERROR), as an
// authoritative server would. A loop or a chain longer than the limit is
// SERVFAIL.
type localZone struct {
	zones    []*zoneData // most specific origin first
	ptr      map[netip.Addr]string
	overlay  netip.Prefix
	revSOA   *mdns.SOA
	search   string // domain for single-label names; "" = off
	upstream func(ctx context.Context, q *mdns.Msg) *mdns.Msg
	bad      int // records skipped at compile time
}

// compileLocalZone builds the local zone from s. Bad records are skipped;
// their count is kept for status and the first errors are returned for the
// log.
func compileLocalZone(s Settings) (*localZone, []error) {
	lz := &localZone{ptr: map[netip.Addr]string{}}
	var errs []error
	domain, ok := canonName(s.Domain)
	if !ok {
		domain = defaultDomain
	}
	byOrigin := map[string]*zoneData{}
	for i, z := range s.Zones {
		origin, ok := canonName(z.Domain)
		if !ok && i == 0 {
			origin, ok = domain, true
		}
		if !ok {
			errs = append(errs, fmt.Errorf("zone %q: invalid domain", z.Domain))
			lz.bad += len(z.Records)
			continue
		}
		zd := byOrigin[origin]
		if zd == nil {
			zd = &zoneData{origin: origin, soa: makeSOA(origin), rrs: map[string][]mdns.RR{}, exists: map[string]bool{origin: true}}
			byOrigin[origin] = zd
			lz.zones = append(lz.zones, zd)
		}
		for _, rec := range z.Records {
			rr, err := compileRecord(origin, rec)
			if err != nil {
				lz.bad++
				if len(errs) < 10 {
					errs = append(errs, fmt.Errorf("zone %s: %w", origin, err))
				}
				continue
			}
			owner := rr.Header().Name
			zd.rrs[owner] = append(zd.rrs[owner], rr)
			for n := owner; n != origin && inDomain(n, origin); n = parentName(n) {
				zd.exists[n] = true
			}
			if i == 0 && s.OverlayPrefix.IsValid() {
				var ip netip.Addr
				switch v := rr.(type) {
				case *mdns.A:
					ip, _ = netip.AddrFromSlice(v.A.To4())
				case *mdns.AAAA:
					ip, _ = netip.AddrFromSlice(v.AAAA)
				}
				if ip.IsValid() && s.OverlayPrefix.Contains(ip) && !strings.HasPrefix(owner, "*.") {
					if _, dup := lz.ptr[ip]; !dup {
						lz.ptr[ip] = owner
					}
				}
			}
		}
	}
	sort.SliceStable(lz.zones, func(i, j int) bool {
		return labelCount(lz.zones[i].origin) > labelCount(lz.zones[j].origin)
	})
	if s.OverlayPrefix.IsValid() {
		lz.overlay = s.OverlayPrefix.Masked()
		lz.revSOA = makeSOA(reverseZone(lz.overlay))
	}
	if s.SearchDomain {
		lz.search = domain
	}
	return lz, errs
}

func makeSOA(origin string) *mdns.SOA {
	return &mdns.SOA{
		Hdr:     mdns.RR_Header{Name: origin, Rrtype: mdns.TypeSOA, Class: mdns.ClassINET, Ttl: negativeTTL},
		Ns:      "ns." + origin,
		Mbox:    "hostmaster." + origin,
		Serial:  1,
		Refresh: 3600,
		Retry:   600,
		Expire:  86400,
		Minttl:  negativeTTL,
	}
}

// compileRecord turns rec into a resource record owned inside origin.
func compileRecord(origin string, rec Record) (mdns.RR, error) {
	name := strings.TrimSpace(rec.Name)
	switch {
	case name == "@" || name == "":
		name = origin
	case !strings.HasSuffix(name, ".") && !inDomain(strings.ToLower(name)+".", origin):
		name = name + "." + origin
	}
	owner, ok := canonName(name)
	if !ok && strings.HasPrefix(name, "*.") {
		if rest, ok2 := canonName(name[2:]); ok2 {
			owner, ok = "*."+rest, true
		}
	}
	if !ok || !inDomain(owner, origin) {
		return nil, fmt.Errorf("record %q: name not in zone", rec.Name)
	}
	ttl := rec.TTL
	if ttl == 0 {
		ttl = defaultRecordTTL
	}
	hdr := func(t uint16) mdns.RR_Header {
		return mdns.RR_Header{Name: owner, Rrtype: t, Class: mdns.ClassINET, Ttl: ttl}
	}
	switch strings.ToUpper(rec.Type) {
	case "A":
		ip, err := netip.ParseAddr(rec.Value)
		if err != nil || !ip.Is4() {
			return nil, fmt.Errorf("record %s A: bad address %q", owner, rec.Value)
		}
		return &mdns.A{Hdr: hdr(mdns.TypeA), A: ip.AsSlice()}, nil
	case "AAAA":
		ip, err := netip.ParseAddr(rec.Value)
		if err != nil || !ip.Is6() || ip.Is4In6() {
			return nil, fmt.Errorf("record %s AAAA: bad address %q", owner, rec.Value)
		}
		return &mdns.AAAA{Hdr: hdr(mdns.TypeAAAA), AAAA: ip.AsSlice()}, nil
	case "CNAME":
		target, ok := canonName(rec.Value)
		if !ok {
			return nil, fmt.Errorf("record %s CNAME: bad target %q", owner, rec.Value)
		}
		return &mdns.CNAME{Hdr: hdr(mdns.TypeCNAME), Target: target}, nil
	case "TXT":
		var parts []string
		v := rec.Value
		for len(v) > 255 {
			parts, v = append(parts, v[:255]), v[255:]
		}
		return &mdns.TXT{Hdr: hdr(mdns.TypeTXT), Txt: append(parts, v)}, nil
	}
	return nil, fmt.Errorf("record %s: unsupported type %q", owner, rec.Type)
}

// zoneFor returns the most specific zone containing name, or nil.
func (lz *localZone) zoneFor(name string) *zoneData {
	for _, z := range lz.zones {
		if inDomain(name, z.origin) {
			return z
		}
	}
	return nil
}

// lookupName returns the records owned by name (wildcard-expanded) and
// whether the name exists.
func (z *zoneData) lookupName(name string) ([]mdns.RR, bool) {
	if rrs, ok := z.rrs[name]; ok {
		return rrs, true
	}
	if z.exists[name] {
		return nil, true
	}
	// RFC 4592: the wildcard at the closest encloser applies.
	for p := parentName(name); inDomain(p, z.origin); p = parentName(p) {
		if z.exists[p] {
			w, ok := z.rrs["*."+p]
			if !ok {
				return nil, false
			}
			out := make([]mdns.RR, len(w))
			for i, rr := range w {
				out[i] = mdns.Copy(rr)
				out[i].Header().Name = name
			}
			return out, true
		}
		if p == "." {
			break
		}
	}
	return nil, false
}

// answer resolves name/qtype in the local zones. handled is false when name
// is in no local zone (the query passes on).
func (lz *localZone) answer(ctx context.Context, q *mdns.Msg, name string, qtype uint16) (*mdns.Msg, bool) {
	z := lz.zoneFor(name)
	if z == nil {
		return nil, false
	}
	resp := new(mdns.Msg)
	resp.SetReply(q)
	resp.Authoritative = true
	resp.RecursionAvailable = true
	cur := name
	var seen []string // names already followed (loop detection)
	for depth := 0; ; depth++ {
		rrs, exists := z.lookupName(cur)
		if !exists {
			resp.Rcode = mdns.RcodeNameError
			resp.Ns = []mdns.RR{z.soa}
			return resp, true
		}
		var cname *mdns.CNAME
		n := len(resp.Answer)
		for _, rr := range rrs {
			t := rr.Header().Rrtype
			if t == qtype || qtype == mdns.TypeANY {
				resp.Answer = append(resp.Answer, rr)
			} else if c, ok := rr.(*mdns.CNAME); ok {
				cname = c
			}
		}
		if len(resp.Answer) > n {
			return resp, true
		}
		if cname == nil {
			resp.Ns = []mdns.RR{z.soa} // NODATA
			return resp, true
		}
		resp.Answer = append(resp.Answer, cname)
		seen = append(seen, cur)
		cur = cname.Target
		if slices.Contains(seen, cur) || depth+1 >= maxCNAMEDepth {
			return reply(q, mdns.RcodeServerFailure), true
		}
		if z = lz.zoneFor(cur); z == nil {
			// Out-of-zone target: ask upstream, keep the chain.
			if isInline(ctx) {
				return needIO, true
			}
			resp.Authoritative = false
			if lz.upstream != nil {
				uq := new(mdns.Msg)
				uq.SetQuestion(cur, qtype)
				if ur := lz.upstream(ctx, uq); ur != nil {
					resp.Answer = append(resp.Answer, ur.Answer...)
					resp.Rcode = ur.Rcode
					if len(ur.Answer) == 0 {
						resp.Ns = ur.Ns
					}
				}
			}
			return resp, true
		}
	}
}

// answerPTR answers reverse queries for addresses in the overlay range.
func (lz *localZone) answerPTR(q *mdns.Msg, name string, qtype uint16) (*mdns.Msg, bool) {
	if lz.revSOA == nil {
		return nil, false
	}
	ip, ok := reverseAddr(name)
	if !ok || !lz.overlay.Contains(ip) {
		return nil, false
	}
	resp := new(mdns.Msg)
	resp.SetReply(q)
	resp.Authoritative = true
	resp.RecursionAvailable = true
	target, ok := lz.ptr[ip]
	switch {
	case !ok:
		resp.Rcode = mdns.RcodeNameError
		resp.Ns = []mdns.RR{lz.revSOA}
	case qtype == mdns.TypePTR || qtype == mdns.TypeANY:
		resp.Answer = []mdns.RR{&mdns.PTR{
			Hdr: mdns.RR_Header{Name: q.Question[0].Name, Rrtype: mdns.TypePTR, Class: mdns.ClassINET, Ttl: defaultRecordTTL},
			Ptr: target,
		}}
	default:
		resp.Ns = []mdns.RR{lz.revSOA}
	}
	return resp, true
}

// zoneHandler serves the local zones at priority 75.
type zoneHandler struct{ lz *localZone }

func (h *zoneHandler) Name() string { return "local-zone" }
func (h *zoneHandler) inlineSafe()  {}

func (h *zoneHandler) ServeDNS(ctx context.Context, q *mdns.Msg) (*mdns.Msg, string) {
	qq := q.Question[0]
	name := lowerName(qq.Name)
	if resp, ok := h.lz.answerPTR(q, name, qq.Qtype); ok {
		return resp, "overlay reverse zone"
	}
	if resp, ok := h.lz.answer(ctx, q, name, qq.Qtype); ok {
		if resp == needIO {
			return needIO, ""
		}
		fixOwner(resp, name, qq.Name)
		return resp, "local zone"
	}
	return nil, ""
}

// searchHandler answers single-label names under the search domain; it is
// registered for "." at priority 75 and passes everything else.
type searchHandler struct{ lz *localZone }

func (h *searchHandler) Name() string { return "search-domain" }
func (h *searchHandler) inlineSafe()  {}

func (h *searchHandler) ServeDNS(ctx context.Context, q *mdns.Msg) (*mdns.Msg, string) {
	qq := q.Question[0]
	name := lowerName(qq.Name)
	if h.lz.search == "" || labelCount(name) != 1 {
		return nil, ""
	}
	full := name + h.lz.search
	resp, ok := h.lz.answer(ctx, q, full, qq.Qtype)
	if resp == needIO {
		return needIO, ""
	}
	if !ok || resp.Rcode == mdns.RcodeNameError {
		return nil, ""
	}
	fixOwner(resp, full, qq.Name)
	return resp, "search domain " + h.lz.search
}

// fixOwner copies the records owned by name into the question's spelling
// (search expansion, 0x20 case) so stub resolvers accept them.
func fixOwner(resp *mdns.Msg, name, qname string) {
	for i, rr := range resp.Answer {
		if rr.Header().Name == name && name != qname {
			c := mdns.Copy(rr)
			c.Header().Name = qname
			resp.Answer[i] = c
		}
	}
}
