// Command dnsbench is the Petrel side of the agent DNS benchmark
// (bench/dns/run.sh): it writes the zone and query files that dnsperf,
// unbound and dnsmasq need, runs a tiny authoritative upstream for the
// control-plane names, and runs the agent's resolver (client/dns, the real
// package) on loopback with a generated peer zone and a primed
// management-domain cache.
//
//	dnsbench -mode files -out DIR                         # zone + query files
//	dnsbench -mode upstream -listen 127.0.0.1:15356       # control-plane names' "host nameserver"
//	dnsbench -mode serve -listen 127.0.0.1:15353 -upstream 127.0.0.1:15356 [-cpuprofile F]
//
// The upstream and serve modes print "ready ADDR" once they answer and run
// until SIGTERM/SIGINT or -lifetime, whichever comes first, so a crashed
// run.sh never leaves them behind.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	mdns "github.com/miekg/dns"

	"petrel/client/dns"
)

// The generated world, shared by every mode so the three servers serve
// exactly the same names and addresses.
const (
	domain = "petrel.internal"
	// upstreamTTL is what the upstream hands out: long enough that neither
	// unbound nor dnsmasq expires the cached answers during a run.
	upstreamTTL = 86400
	// pseudoNS stands in for the host's nameserver in the resolver's
	// Original list. The bypass resolver ignores loopback nameservers (it
	// must never loop back into the agent), so the rig names a routable
	// address and its Dial sends every control-plane socket to the
	// loopback upstream instead.
	pseudoNS = "192.0.2.53:53"
)

// controlPlane are the names primed in the management-domain cache, with
// the A record the upstream returns for each.
var controlPlane = []struct{ name, addr string }{
	{"api.petrel.example", "203.0.113.10"},
	{"signal.petrel.example", "203.0.113.11"},
	{"stun1.petrel.example", "203.0.113.12"},
	{"stun2.petrel.example", "203.0.113.13"},
}

func peerName(i int) string { return fmt.Sprintf("peer%d.%s", i, domain) }

// peerAddr spreads peers over 100.64.0.0/16 from 100.64.0.1.
func peerAddr(i int) string { return fmt.Sprintf("100.64.%d.%d", (i+1)/256, (i+1)%256) }

type options struct {
	mode, out, listen, upstream, cpuProfile string
	peers                                   int
	lifetime                                time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.mode, "mode", "serve", "files | upstream | serve")
	flag.StringVar(&o.out, "out", ".", "files mode: output directory")
	flag.StringVar(&o.listen, "listen", "127.0.0.1:15353", "upstream and serve modes: UDP/TCP listen address")
	flag.StringVar(&o.upstream, "upstream", "127.0.0.1:15356", "serve mode: the upstream (-mode upstream) the cache resolves through")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "serve mode: write a CPU profile of the whole serving time here")
	flag.IntVar(&o.peers, "peers", 1000, "peers in the local zone")
	flag.DurationVar(&o.lifetime, "lifetime", 20*time.Minute, "upstream and serve modes: exit after this long even without a signal")
	flag.Parse()

	var err error
	switch o.mode {
	case "files":
		err = writeFiles(o)
	case "upstream":
		err = runUpstream(o)
	case "serve":
		err = runServe(o)
	default:
		err = fmt.Errorf("unknown mode %q", o.mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dnsbench:", err)
		os.Exit(1)
	}
}

// writeFiles writes, into o.out:
//
//	queries-local.txt   dnsperf input: every peer name, type A
//	queries-cache.txt   dnsperf input: the control-plane names, type A
//	hosts               the peer zone as a hosts file (dnsmasq --addn-hosts)
//	unbound-zone.conf   the peer zone as unbound local-zone/local-data lines
func writeFiles(o options) error {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", o.out, err)
	}
	var local, cache, hosts, ub strings.Builder
	fmt.Fprintf(&ub, "  local-zone: %q static\n", domain+".")
	for i := range o.peers {
		fmt.Fprintf(&local, "%s A\n", peerName(i))
		fmt.Fprintf(&hosts, "%s %s\n", peerAddr(i), peerName(i))
		fmt.Fprintf(&ub, "  local-data: \"%s. 300 IN A %s\"\n", peerName(i), peerAddr(i))
	}
	for _, c := range controlPlane {
		fmt.Fprintf(&cache, "%s A\n", c.name)
	}
	for name, body := range map[string]string{
		"queries-local.txt": local.String(),
		"queries-cache.txt": cache.String(),
		"hosts":             hosts.String(),
		"unbound-zone.conf": ub.String(),
	} {
		if err := os.WriteFile(filepath.Join(o.out, name), []byte(body), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

// runUpstream serves the control-plane names authoritatively (A records,
// NODATA for other types, REFUSED outside them) and reports on exit how
// many queries it answered, so run.sh can show that the measured phases
// were cache hits.
func runUpstream(o options) error {
	zone := map[string]net.IP{}
	for _, c := range controlPlane {
		zone[mdns.Fqdn(c.name)] = net.ParseIP(c.addr).To4()
	}
	var queries atomic.Int64
	h := mdns.HandlerFunc(func(w mdns.ResponseWriter, req *mdns.Msg) {
		queries.Add(1)
		m := new(mdns.Msg)
		m.SetReply(req)
		q := req.Question[0]
		ip, ok := zone[strings.ToLower(q.Name)]
		switch {
		case !ok:
			m.Rcode = mdns.RcodeRefused
		case q.Qtype == mdns.TypeA:
			m.Authoritative = true
			m.Answer = []mdns.RR{&mdns.A{Hdr: mdns.RR_Header{Name: q.Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: upstreamTTL}, A: ip}}
		default:
			m.Authoritative = true // NODATA
		}
		_ = w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", o.listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", o.listen, err)
	}
	started := make(chan struct{})
	srv := &mdns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: func() { close(started) }}
	failed := make(chan error, 1)
	go func() { failed <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-failed:
		return fmt.Errorf("serve %s: %w", o.listen, err)
	}
	fmt.Println("ready", pc.LocalAddr())
	waitStop(o.lifetime)
	_ = srv.Shutdown()
	fmt.Fprintf(os.Stderr, "upstream: answered %d queries\n", queries.Load())
	return nil
}

// runServe runs the agent's resolver the way the engine does: New, Start,
// Apply with the peer zone and the server domains; it waits until every
// control-plane name is a fresh cache entry, then prints "ready".
func runServe(o options) error {
	listen, err := netip.ParseAddrPort(o.listen)
	if err != nil {
		return fmt.Errorf("parse -listen: %w", err)
	}
	up := o.upstream
	// Every control-plane socket (bypass and original handler) goes to the
	// loopback upstream; see pseudoNS.
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, up)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r, err := dns.New(dns.Config{
		Listen:   []netip.AddrPort{listen},
		Original: []netip.AddrPort{netip.MustParseAddrPort(pseudoNS)},
		Dial:     dial,
		Logger:   log,
		CacheTTL: time.Hour, // no background refresh during a run
	})
	if err != nil {
		return fmt.Errorf("new resolver: %w", err)
	}
	defer r.Close()
	if err := r.Start(); err != nil {
		return fmt.Errorf("start resolver: %w", err)
	}

	zone := dns.Zone{Domain: domain}
	for i := range o.peers {
		zone.Records = append(zone.Records, dns.Record{Name: peerName(i), Type: "A", Value: peerAddr(i)})
	}
	var names []string
	for _, c := range controlPlane {
		names = append(names, c.name)
	}
	r.Apply(dns.Settings{
		Domain:        domain,
		Zones:         []dns.Zone{zone},
		OverlayPrefix: netip.MustParsePrefix("100.64.0.0/10"),
		ServerDomains: dns.ServerDomains{
			Management: names[:1],
			Signal:     names[1:2],
			STUN:       names[2:],
			Has:        dns.AllCategories,
		},
		ManagementHost: names[0],
	})
	if err := waitPrimed(r, names, peerName(o.peers-1)); err != nil {
		return err
	}

	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return fmt.Errorf("create profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("start profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Println("ready", r.Addrs()[0])
	waitStop(o.lifetime)
	return nil
}

// waitPrimed polls until every control-plane name is answered fresh from
// the cache and the last peer from the local zone.
func waitPrimed(r *dns.Resolver, names []string, peer string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	check := func() error {
		for _, n := range names {
			a, err := r.Query(ctx, n, mdns.TypeA)
			if err != nil {
				return err
			}
			if a.Handler != "mgmt-cache" || !strings.HasPrefix(a.How, "cache fresh") || len(a.Records) != 1 {
				return fmt.Errorf("%s not cached yet: handler=%s how=%q records=%v", n, a.Handler, a.How, a.Records)
			}
		}
		a, err := r.Query(ctx, peer, mdns.TypeA)
		if err != nil {
			return err
		}
		if a.Handler != "local-zone" || len(a.Records) != 1 {
			return fmt.Errorf("%s not in the local zone: handler=%s rcode=%s", peer, a.Handler, a.Rcode)
		}
		return nil
	}
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("prime resolver: %w", errors.Join(err, ctx.Err()))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitStop blocks until SIGTERM/SIGINT or the lifetime has passed.
func waitStop(lifetime time.Duration) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)
	select {
	case <-sig:
	case <-time.After(lifetime):
		fmt.Fprintln(os.Stderr, "dnsbench: lifetime reached, exiting")
	}
}
