package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Lab control-plane names; the lab DNS server is authoritative for Zone.
const (
	Zone          = "lab.test"
	MgmtName      = "mgmt.lab.test"       // petrel-server (management + signal)
	StunName      = "stun.lab.test"       // STUN, on the server host
	RelayPoolName = "relay.lab.test"      // pool root: every relay instance
	RelayEU       = "eu-1.relay.lab.test" // relay instance 1
	RelayUS       = "us-1.relay.lab.test" // relay instance 2
)

// Records is an authoritative A-record table: name → addresses. Names are
// matched case-insensitively, with or without the trailing dot.
type Records struct {
	mu sync.RWMutex
	m  map[string][]netip.Addr
	// log is the query log (ServeDNS appends; bounded by maxQueryLog).
	log []QueryLogEntry
}

// QueryLogEntry is one query a Records server answered.
type QueryLogEntry struct {
	Time  time.Time
	Name  string         // canonical: lower case, trailing dot
	Type  string         // "A", "AAAA", …
	From  netip.AddrPort // the client as the server saw it (after NAT)
	Rcode string         // "NOERROR", "NXDOMAIN", "REFUSED", …
}

// maxQueryLog bounds the query log; the oldest entries are dropped.
const maxQueryLog = 4096

// Queries returns the logged queries for name (all names when name is
// ""), oldest first. Tests use it to see whether, when and from which
// address a query reached the server.
func (r *Records) Queries(name string) []QueryLogEntry {
	r.mu.RLock()
	defer r.mu.RUnlock()
	k := ""
	if name != "" {
		k = dns.CanonicalName(name)
	}
	var out []QueryLogEntry
	for _, e := range r.log {
		if k == "" || e.Name == k {
			out = append(out, e)
		}
	}
	return out
}

func (r *Records) logQuery(e QueryLogEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.log) >= maxQueryLog {
		r.log = append(r.log[:0], r.log[len(r.log)-maxQueryLog/2:]...)
	}
	r.log = append(r.log, e)
}

// NewRecords returns an empty table.
func NewRecords() *Records { return &Records{m: map[string][]netip.Addr{}} }

// Set replaces the addresses of name (none deletes it).
func (r *Records) Set(name string, addrs ...netip.Addr) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := dns.CanonicalName(name)
	if len(addrs) == 0 {
		delete(r.m, k)
		return
	}
	r.m[k] = append([]netip.Addr(nil), addrs...)
}

// Lookup returns the addresses of name.
func (r *Records) Lookup(name string) ([]netip.Addr, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	a, ok := r.m[dns.CanonicalName(name)]
	return a, ok
}

// ServeDNS answers A queries from the table: known names get their IPv4
// addresses (AAAA and other types get an empty NOERROR), unknown names in
// Zone get NXDOMAIN, other zones REFUSED.
func (r *Records) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Authoritative = true
	if len(req.Question) != 1 {
		resp.SetRcode(req, dns.RcodeFormatError)
		_ = w.WriteMsg(resp)
		return
	}
	q := req.Question[0]
	addrs, ok := r.Lookup(q.Name)
	switch {
	case ok:
		if q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY {
			for _, a := range addrs {
				if a.Is4() {
					resp.Answer = append(resp.Answer, &dns.A{
						Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5},
						A:   net.IP(a.AsSlice()),
					})
				}
			}
		}
	case dns.IsSubDomain(Zone+".", dns.CanonicalName(q.Name)):
		resp.SetRcode(req, dns.RcodeNameError)
	default:
		resp.SetRcode(req, dns.RcodeRefused)
	}
	e := QueryLogEntry{Time: time.Now(), Name: dns.CanonicalName(q.Name), Type: dns.TypeToString[q.Qtype],
		Rcode: dns.RcodeToString[resp.Rcode]}
	if ra := w.RemoteAddr(); ra != nil {
		if ap, err := netip.ParseAddrPort(ra.String()); err == nil {
			e.From = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		}
	}
	r.logQuery(e)
	_ = w.WriteMsg(resp)
}

// DNS is a running lab DNS server (UDP and TCP on one address).
type DNS struct {
	// Host is the namespace the server listens in.
	Host *Host
	// Addr is the listening address (port 53).
	Addr netip.AddrPort
	// Records is the live table; Set takes effect immediately.
	Records *Records

	stopFn func()
	once   sync.Once
}

// ServeDNSOn serves records on an already-open UDP socket and TCP listener
// (either may be nil) until the returned stop function is called. The
// `lab dns-serve` subcommand and the in-process lab server share it.
func ServeDNSOn(pc net.PacketConn, ln net.Listener, records *Records) (stop func(), err error) {
	var servers []*dns.Server
	started := make(chan error, 2)
	if pc != nil {
		servers = append(servers, &dns.Server{PacketConn: pc, Handler: records})
	}
	if ln != nil {
		servers = append(servers, &dns.Server{Listener: ln, Handler: records})
	}
	for _, s := range servers {
		s.NotifyStartedFunc = func() { started <- nil }
		go func() {
			if err := s.ActivateAndServe(); err != nil {
				select {
				case started <- err:
				default:
				}
			}
		}()
	}
	var errs []error
	for range servers {
		if err := <-started; err != nil {
			errs = append(errs, err)
		}
	}
	stop = func() {
		for _, s := range servers {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = s.ShutdownContext(ctx)
			cancel()
		}
	}
	if err := errors.Join(errs...); err != nil {
		stop()
		return nil, fmt.Errorf("serve dns: %w", err)
	}
	return stop, nil
}

// StartDNS creates the "dns" host on the bridge at DNSAddr (the address
// every host's resolv.conf names) and serves records there in this process:
// the sockets are opened inside the namespace and served from ordinary
// goroutines. Lab.Close stops it.
func (l *Lab) StartDNS(records *Records) (*DNS, error) {
	if records == nil {
		records = NewRecords()
	}
	h, err := l.AddServerHost("dns", DNSAddr)
	if err != nil {
		return nil, fmt.Errorf("start dns: %w", err)
	}
	addr := netip.AddrPortFrom(DNSAddr, 53)
	pc, err := h.ListenUDP(addr.String())
	if err != nil {
		return nil, fmt.Errorf("start dns: %w", err)
	}
	ln, err := h.ListenTCP(addr.String())
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("start dns: %w", err)
	}
	stop, err := ServeDNSOn(pc, ln, records)
	if err != nil {
		return nil, err
	}
	d := &DNS{Host: h, Addr: addr, Records: records}
	d.stopFn = stop
	l.mu.Lock()
	l.dns = d
	l.mu.Unlock()
	return d, nil
}

func (d *DNS) close() { d.once.Do(d.stopFn) }

// Query resolves name (type A) against server from inside namespace h,
// without resolv.conf; tests and `lab dns-query` use it.
func Query(ctx context.Context, h *Host, server netip.AddrPort, name string) ([]netip.Addr, error) {
	var conn net.Conn
	dial := func() error {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, "udp", server.String())
		return err
	}
	var err error
	if h != nil {
		err = h.Do(dial)
	} else {
		err = dial()
	}
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", name, err)
	}
	defer conn.Close()
	c := &dns.Client{Timeout: 5 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(strings.ToLower(name)), dns.TypeA)
	resp, _, err := c.ExchangeWithConnContext(ctx, m, &dns.Conn{Conn: conn})
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", name, err)
	}
	if resp.Rcode != dns.RcodeSuccess {
		return nil, fmt.Errorf("query %s: %s", name, dns.RcodeToString[resp.Rcode])
	}
	var out []netip.Addr
	for _, rr := range resp.Answer {
		if a, ok := rr.(*dns.A); ok {
			if ip, ok := netip.AddrFromSlice(a.A.To4()); ok {
				out = append(out, ip)
			}
		}
	}
	return out, nil
}
