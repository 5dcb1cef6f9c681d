package dns

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	mdns "github.com/miekg/dns"
)

// Answer reports how the resolver answered one query (`petrel dns query`).
type Answer struct {
	Name     string   `json:"name"`
	Type     string   `json:"type"`
	Rcode    string   `json:"rcode"`
	Records  []string `json:"records"`
	Handler  string   `json:"handler"`  // "mgmt-cache", "local-zone", "group:ID", "original", "none"
	Priority int      `json:"priority"` // of the answering handler
	Domain   string   `json:"domain"`   // the domain the handler matched
	How      string   `json:"how"`      // "cache fresh (bypass 192.0.2.1:53)", "upstream 10.0.0.2:53", …
	// Authoritative is set for answers from the local zone.
	Authoritative bool `json:"authoritative"`
}

// Query resolves name/qtype in-process through the whole chain (as a query
// on a listener would) and says which handler answered and how. The error
// is non-nil only for an invalid name.
func (r *Resolver) Query(ctx context.Context, name string, qtype uint16) (Answer, error) {
	fq := mdns.Fqdn(strings.TrimSpace(name))
	if _, ok := mdns.IsDomainName(fq); !ok || name == "" {
		return Answer{}, fmt.Errorf("dns: query %q: invalid name", name)
	}
	q := new(mdns.Msg)
	q.SetQuestion(fq, qtype)
	resp, info := r.resolveSafe(ctx, q)
	a := Answer{
		Name: fq, Type: mdns.TypeToString[qtype], Rcode: mdns.RcodeToString[resp.Rcode],
		Handler: info.Handler, Priority: info.Priority, Domain: info.Domain, How: info.How,
		Authoritative: resp.Authoritative,
	}
	for _, rr := range resp.Answer {
		a.Records = append(a.Records, rr.String())
	}
	return a, nil
}

// resolveSafe is resolve with a timeout and panic protection.
func (r *Resolver) resolveSafe(ctx context.Context, q *mdns.Msg) (resp *mdns.Msg, info answerInfo) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("panic resolving", "panic", p)
			resp, info = reply(q, mdns.RcodeServerFailure), answerInfo{Handler: "none", How: "internal error"}
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, r.queryTimeout)
	defer cancel()
	return r.resolve(ctx, q)
}

// LookupHost resolves name to addresses through the chain starting at the
// management-domain cache; the agent's own dials (management, signal,
// relays, the SOCKS5 proxy) use it. IP literals are returned as they are.
// A and AAAA are asked concurrently; IPv4 addresses come first. It returns
// ErrNotFound (NXDOMAIN or no address) or ErrNoAnswer (nobody answered).
func (r *Resolver) LookupHost(ctx context.Context, name string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(strings.Trim(name, "[]")); err == nil {
		return []netip.Addr{ip}, nil
	}
	fq := mdns.Fqdn(strings.TrimSpace(name))
	if _, ok := mdns.IsDomainName(fq); !ok || name == "" {
		return nil, fmt.Errorf("lookup %q: %w", name, ErrNotFound)
	}
	type result struct {
		addrs []netip.Addr
		rcode int
	}
	var res [2]result
	done := make(chan struct{}, 2)
	for i, t := range []uint16{mdns.TypeA, mdns.TypeAAAA} {
		go func() {
			defer func() { done <- struct{}{} }()
			q := new(mdns.Msg)
			q.SetQuestion(fq, t)
			resp, _ := r.resolveSafe(ctx, q)
			res[i].rcode = resp.Rcode
			for _, rr := range resp.Answer {
				switch v := rr.(type) {
				case *mdns.A:
					if ip, ok := netip.AddrFromSlice(v.A.To4()); ok {
						res[i].addrs = append(res[i].addrs, ip)
					}
				case *mdns.AAAA:
					if ip, ok := netip.AddrFromSlice(v.AAAA); ok {
						res[i].addrs = append(res[i].addrs, ip)
					}
				}
			}
		}()
	}
	<-done
	<-done
	addrs := append(res[0].addrs, res[1].addrs...)
	if len(addrs) > 0 {
		return addrs, nil
	}
	if res[0].rcode == mdns.RcodeServerFailure && res[1].rcode == mdns.RcodeServerFailure {
		return nil, fmt.Errorf("lookup %s: %w", name, ErrNoAnswer)
	}
	return nil, fmt.Errorf("lookup %s: %w", name, ErrNotFound)
}
