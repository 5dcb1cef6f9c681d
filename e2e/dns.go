package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"petrel/lab"
)

// Helpers for the DNS scenarios (docs/dns.md): the agent's resolver as
// the CLI shows it, the lab host's resolv.conf, and small servers (HTTP,
// DNS) on lab hosts.

// DNSAnswer is `petrel dns query NAME [TYPE] --json`.
type DNSAnswer struct {
	Name          string   `json:"name"`
	Type          string   `json:"type"`
	Rcode         string   `json:"rcode"`
	Records       []string `json:"records"`
	Handler       string   `json:"handler"` // mgmt-cache, local-zone, group:ID, original, none
	Priority      int      `json:"priority"`
	Domain        string   `json:"domain"`
	How           string   `json:"how"`
	Authoritative bool     `json:"authoritative"`
}

// Has reports whether one of the answer's records carries addr.
func (a *DNSAnswer) Has(addr string) bool {
	for _, rr := range a.Records {
		f := strings.Fields(rr)
		if len(f) > 0 && f[len(f)-1] == addr {
			return true
		}
	}
	return false
}

func (a *DNSAnswer) String() string {
	if a == nil {
		return "<no answer>"
	}
	return fmt.Sprintf("%s %s %s by %s (%s) %v", a.Name, a.Type, a.Rcode, a.Handler, a.How, a.Records)
}

// DNSQuery runs `petrel dns query NAME [TYPE] --json` against the agent.
func (a *Agent) DNSQuery(ctx context.Context, name string, qtype ...string) (*DNSAnswer, error) {
	args := append([]string{"dns", "query", name}, qtype...)
	out, err := a.CLI(ctx, append(args, "--json")...)
	if err != nil {
		return nil, err
	}
	var ans DNSAnswer
	if err := json.Unmarshal([]byte(out), &ans); err != nil {
		return nil, fmt.Errorf("parse dns query of %s %q: %w", a.Name, out, err)
	}
	return &ans, nil
}

// DNSCacheEntry is one management-domain cache entry of `petrel dns status --json`.
type DNSCacheEntry struct {
	Name       string   `json:"name"`
	Type       string   `json:"type"`
	Addrs      []string `json:"addrs"`
	AgeSeconds float64  `json:"age_seconds"`
	Stale      bool     `json:"stale"`
	OnDemand   bool     `json:"on_demand"`
	Refreshing bool     `json:"refreshing"`
	Source     string   `json:"source"`
	LastError  string   `json:"last_error"`
}

// DNSDetails is `petrel dns status --json` (the fields the tests read).
type DNSDetails struct {
	Resolver *struct {
		State     string          `json:"state"`
		Listeners []string        `json:"listeners"`
		Domain    string          `json:"domain"`
		Bypass    []string        `json:"bypass"`
		Cache     []DNSCacheEntry `json:"cache"`
		PoolRoots []string        `json:"pool_roots"`
		Handlers  []struct {
			Priority int    `json:"priority"`
			Name     string `json:"name"`
			Domain   string `json:"domain"`
		} `json:"handlers"`
	} `json:"resolver"`
	Host *struct {
		Mode       string `json:"mode"`
		ResolvConf string `json:"resolv_conf"`
		Backup     string `json:"backup"`
	} `json:"host"`
	Error string `json:"error"`
}

// CacheEntry returns the cache entry for name and type (or nil).
func (d *DNSDetails) CacheEntry(name, qtype string) *DNSCacheEntry {
	if d.Resolver == nil {
		return nil
	}
	name = strings.TrimSuffix(strings.ToLower(name), ".") + "."
	for i := range d.Resolver.Cache {
		if d.Resolver.Cache[i].Name == name && d.Resolver.Cache[i].Type == qtype {
			return &d.Resolver.Cache[i]
		}
	}
	return nil
}

// DNSDetails runs `petrel dns status --json`.
func (a *Agent) DNSDetails(ctx context.Context) (*DNSDetails, error) {
	out, err := a.CLI(ctx, "dns", "status", "--json")
	if err != nil {
		return nil, err
	}
	var d DNSDetails
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		return nil, fmt.Errorf("parse dns status of %s %q: %w", a.Name, out, err)
	}
	return &d, nil
}

// StatusDNS is the "dns" object of `petrel status --json`.
type StatusDNS struct {
	Listeners []string `json:"listeners"`
	HostMode  string   `json:"host_mode"`
	Domain    string   `json:"domain"`
	Bypass    bool     `json:"bypass"`
	Error     string   `json:"error"`
}

// StatusDNS reads the "dns" object of `petrel status --json` (nil when absent).
func (a *Agent) StatusDNS(ctx context.Context) (*StatusDNS, error) {
	out, err := a.CLI(ctx, "status", "--json")
	if err != nil {
		return nil, err
	}
	var s struct {
		DNS *StatusDNS `json:"dns"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		return nil, fmt.Errorf("parse status of %s: %w", a.Name, err)
	}
	return s.DNS, nil
}

// ResolvConf is the file `ip netns exec` bind-mounts over /etc/resolv.conf
// for processes in h's namespace: what an agent there rewrites.
func ResolvConf(h *lab.Host) string { return filepath.Join("/etc/netns", h.NS, "resolv.conf") }

// ReadResolvConf returns the bytes of h's resolv.conf.
func ReadResolvConf(h *lab.Host) ([]byte, error) { return os.ReadFile(ResolvConf(h)) }

// Dig runs `dig +short +time=2 +tries=1 ARGS` in h's namespace (it uses the
// namespace's resolv.conf unless ARGS name a server) and returns the
// non-empty output lines. dig exits 0 for NXDOMAIN and REFUSED (empty
// output); an error means no server answered.
func Dig(ctx context.Context, h *lab.Host, args ...string) ([]string, error) {
	out, err := h.Run(ctx, append([]string{"dig", "+short", "+time=2", "+tries=1"}, args...)...)
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, ";") {
			lines = append(lines, l)
		}
	}
	if err != nil {
		return lines, fmt.Errorf("dig %s in %s: %w: %s", strings.Join(args, " "), h.Name, err, strings.TrimSpace(out))
	}
	return lines, nil
}

// Getent runs `getent hosts NAME` in h's namespace (the libc resolver:
// /etc/hosts, then resolv.conf with its search list) and returns the
// first address ("" when the name did not resolve).
func Getent(ctx context.Context, h *lab.Host, name string) (string, error) {
	out, err := h.Run(ctx, "getent", "hosts", name)
	if err != nil {
		return "", fmt.Errorf("getent hosts %s in %s: %w (%s)", name, h.Name, err, strings.TrimSpace(out))
	}
	f := strings.Fields(out)
	if len(f) == 0 {
		return "", fmt.Errorf("getent hosts %s in %s: empty output", name, h.Name)
	}
	return f[0], nil
}

// ServeHTTP serves body on addr ("ip:port", an address of h) with Go's
// net/http until the returned function is called.
func ServeHTTP(h *lab.Host, addr, body string) (stop func(), err error) {
	ln, err := h.ListenTCP(addr)
	if err != nil {
		return nil, fmt.Errorf("http on %s %s: %w", h.Name, addr, err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, body)
		})}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }, nil
}

// ServeDNSRecords serves records on addr (UDP and TCP, an address of h)
// until the returned function is called; records.Queries logs what arrived.
func ServeDNSRecords(h *lab.Host, addr netip.AddrPort, records *lab.Records) (stop func(), err error) {
	pc, err := h.ListenUDP(addr.String())
	if err != nil {
		return nil, fmt.Errorf("dns on %s %s: %w", h.Name, addr, err)
	}
	ln, err := h.ListenTCP(addr.String())
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("dns on %s %s: %w", h.Name, addr, err)
	}
	return lab.ServeDNSOn(pc, ln, records)
}
