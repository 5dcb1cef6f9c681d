package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"petrel/lab"
)

// Helpers for the access-policy scenarios (firewall_lab_test.go): groups
// and policies through REST, the agents' firewall counters and
// `petrel debug trace`, TCP echo servers, and raw IPv4 packets with a
// source address of the test's choice.

// NoFirewallEnv, when set to 1, makes FirewallArgs start agents with the
// hidden --debug-no-firewall flag: the access policy is then not enforced
// and the firewall tests must fail (how they were checked for teeth).
const NoFirewallEnv = "PETREL_E2E_NO_FIREWALL"

// FirewallArgs returns the extra `petrel up` flags of the firewall tests.
func FirewallArgs() []string {
	if os.Getenv(NoFirewallEnv) == "1" {
		return []string{"--debug-no-firewall"}
	}
	return nil
}

// FirewallCounters is a peer's "firewall" object in `petrel status --json`.
type FirewallCounters struct {
	InAllowed  uint64 `json:"in_allowed"`
	InDropped  uint64 `json:"in_dropped"`
	OutAllowed uint64 `json:"out_allowed"`
	OutDropped uint64 `json:"out_dropped"`
	Spoofed    uint64 `json:"spoofed"`
}

// Firewall returns the firewall counters the agent shows for each peer
// (by name); a peer without the object is missing from the map.
func (a *Agent) Firewall(ctx context.Context) (map[string]FirewallCounters, error) {
	out, err := a.CLI(ctx, "status", "--json")
	if err != nil {
		return nil, err
	}
	var s struct {
		Peers []struct {
			Name     string            `json:"name"`
			Firewall *FirewallCounters `json:"firewall"`
		} `json:"peers"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		return nil, fmt.Errorf("parse status of %s: %w", a.Name, err)
	}
	m := map[string]FirewallCounters{}
	for _, p := range s.Peers {
		if p.Firewall != nil {
			m[p.Name] = *p.Firewall
		}
	}
	return m, nil
}

// TraceResult is `petrel debug trace ... --json`.
type TraceResult struct {
	Allowed   bool   `json:"allowed"`
	RuleID    string `json:"rule_id"`
	PolicyID  string `json:"policy_id"`
	Reason    string `json:"reason"`
	Direction string `json:"direction"`
}

// Trace runs `petrel debug trace SRC DST PROTO [PORT] --json` on the agent.
func (a *Agent) Trace(ctx context.Context, args ...string) (*TraceResult, error) {
	out, err := a.CLI(ctx, append(append([]string{"debug", "trace"}, args...), "--json")...)
	if err != nil {
		return nil, err
	}
	var r TraceResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return nil, fmt.Errorf("parse trace on %s %q: %w", a.Name, out, err)
	}
	return &r, nil
}

// PolicyRule is one rule of a policy in the REST API.
type PolicyRule struct {
	ID            string   `json:"id,omitempty"`
	Name          string   `json:"name,omitempty"`
	Sources       []string `json:"sources"`
	Destinations  []string `json:"destinations"`
	Protocol      string   `json:"protocol"`
	Ports         []string `json:"ports,omitempty"`
	Bidirectional bool     `json:"bidirectional"`
	Action        string   `json:"action"`
}

// Policy is a policy in the REST API (request and answer; the answer
// lists sources and destinations as objects, see PolicyView).
type Policy struct {
	ID      string       `json:"id,omitempty"`
	Name    string       `json:"name"`
	Enabled bool         `json:"enabled"`
	Rules   []PolicyRule `json:"rules"`
}

// PolicyView is a policy as the REST API returns it.
type PolicyView struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Enabled bool   `json:"enabled"`
	Rules   []struct {
		ID       string   `json:"id"`
		Protocol string   `json:"protocol"`
		Ports    []string `json:"ports"`
	} `json:"rules"`
}

// Policies lists the account's policies.
func (c *Cluster) Policies(ctx context.Context) ([]PolicyView, error) {
	var ps []PolicyView
	if err := c.API(ctx, "GET", "/api/policies", nil, &ps); err != nil {
		return nil, err
	}
	return ps, nil
}

// DeleteAllPolicies deletes every policy (the cluster's allow-all and
// whatever a new account starts with): the account then denies everything.
// It returns the names it deleted.
func (c *Cluster) DeleteAllPolicies(ctx context.Context) ([]string, error) {
	ps, err := c.Policies(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, p := range ps {
		if err := c.API(ctx, "DELETE", "/api/policies/"+p.ID, nil, nil); err != nil {
			return names, err
		}
		names = append(names, p.Name)
	}
	return names, nil
}

// CreateGroup creates a group of peers (names or ids) and returns its id.
func (c *Cluster) CreateGroup(ctx context.Context, name string, peers ...string) (string, error) {
	var out struct {
		ID string `json:"id"`
	}
	if err := c.API(ctx, "POST", "/api/groups", map[string]any{"name": name, "peers": peers}, &out); err != nil {
		return "", err
	}
	return out.ID, nil
}

// CreatePolicy creates a policy and returns it as stored (ids assigned).
func (c *Cluster) CreatePolicy(ctx context.Context, p Policy) (*PolicyView, error) {
	var out PolicyView
	if err := c.API(ctx, "POST", "/api/policies", p, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdatePolicy replaces policy id and returns it as stored.
func (c *Cluster) UpdatePolicy(ctx context.Context, id string, p Policy) (*PolicyView, error) {
	var out PolicyView
	if err := c.API(ctx, "PUT", "/api/policies/"+id, p, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// TCPEcho is a TCP server on a lab host that echoes every byte back and
// counts the connections it accepted.
type TCPEcho struct {
	ln net.Listener
	mu sync.Mutex
	n  int
}

// StartTCPEcho listens on addr ("ip:port") inside h.
func StartTCPEcho(h *lab.Host, addr string) (*TCPEcho, error) {
	ln, err := h.ListenTCP(addr)
	if err != nil {
		return nil, err
	}
	e := &TCPEcho{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.mu.Lock()
			e.n++
			e.mu.Unlock()
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return e, nil
}

// Accepted returns how many connections the server accepted.
func (e *TCPEcho) Accepted() int { e.mu.Lock(); defer e.mu.Unlock(); return e.n }

// Close stops accepting (open connections keep echoing until closed).
func (e *TCPEcho) Close() error { return e.ln.Close() }

// RoundTrip writes payload on c and reads it back within wait.
func RoundTrip(c net.Conn, payload []byte, wait time.Duration) error {
	_ = c.SetDeadline(time.Now().Add(wait))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(payload); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("read echo: %w", err)
	}
	if !bytes.Equal(got, payload) {
		return fmt.Errorf("echo %q, sent %q", got, payload)
	}
	return nil
}

// DialRoundTrip dials addr from h (giving up after wait), does one round
// trip and returns the open connection.
func DialRoundTrip(ctx context.Context, h *lab.Host, addr string, payload []byte, wait time.Duration) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	c, err := h.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if err := RoundTrip(c, payload, wait); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// RawSender sends hand-made IPv4 packets from a lab host: a raw socket
// (IPPROTO_RAW, i.e. IP_HDRINCL) opened inside the host's namespace, so
// the source address is whatever the packet says. The kernel routes the
// packet by its destination (into petrel0 for an overlay address).
type RawSender struct{ fd int }

// NewRawSender opens the raw socket in h.
func NewRawSender(h *lab.Host) (*RawSender, error) {
	fd := -1
	err := h.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("raw socket in %s: %w", h.Name, err)
	}
	return &RawSender{fd: fd}, nil
}

// Close closes the socket.
func (r *RawSender) Close() error { return unix.Close(r.fd) }

// SendUDP sends one UDP datagram from src to dst with the given payload.
func (r *RawSender) SendUDP(src, dst netip.AddrPort, payload []byte) error {
	if !src.Addr().Is4() || !dst.Addr().Is4() {
		return errors.New("raw send: IPv4 only")
	}
	pkt := UDPPacket(src, dst, payload)
	return unix.Sendto(r.fd, pkt, 0, &unix.SockaddrInet4{Addr: dst.Addr().As4()})
}

// UDPPacket builds an IPv4/UDP packet with valid IP and UDP checksums.
func UDPPacket(src, dst netip.AddrPort, payload []byte) []byte {
	ulen := 8 + len(payload)
	p := make([]byte, 20+ulen)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	binary.BigEndian.PutUint16(p[4:], 0x5e11) // identification
	p[8] = 64                                 // TTL
	p[9] = unix.IPPROTO_UDP
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(p[12:16], s[:])
	copy(p[16:20], d[:])
	binary.BigEndian.PutUint16(p[10:], ^csum(0, p[:20]))
	u := p[20:]
	binary.BigEndian.PutUint16(u[0:], src.Port())
	binary.BigEndian.PutUint16(u[2:], dst.Port())
	binary.BigEndian.PutUint16(u[4:], uint16(ulen))
	copy(u[8:], payload)
	// Pseudo-header: source, destination, zero, protocol, UDP length.
	ph := make([]byte, 12)
	copy(ph[0:4], s[:])
	copy(ph[4:8], d[:])
	ph[9] = unix.IPPROTO_UDP
	binary.BigEndian.PutUint16(ph[10:], uint16(ulen))
	sum := ^csum(uint32(csum(0, ph)), u)
	if sum == 0 {
		sum = 0xffff
	}
	binary.BigEndian.PutUint16(u[6:], sum)
	return p
}

func csum(acc uint32, b []byte) uint16 {
	for len(b) >= 2 {
		acc += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint32(b[0]) << 8
	}
	for acc>>16 != 0 {
		acc = acc&0xffff + acc>>16
	}
	return uint16(acc)
}
