package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"petrel/lab"
)

// Helpers for the route, HA and exit-node scenarios: the agent's route
// view, the exit-node CLI, routes through the REST API, and what a test
// reads from a host's kernel (tables, counters, connections).

// RouteStatus is one entry of `petrel routes --json` (and Status.Routes).
type RouteStatus struct {
	ID        string `json:"id"`
	NetworkID string `json:"network_id"`
	Network   string `json:"network"`
	Peer      string `json:"peer"`
	PeerName  string `json:"peer_name"`
	Metric    int    `json:"metric"`
	State     string `json:"state"` // installed|standby|served|refused|shadowed|failed|unavailable|exit-idle
	Chosen    bool   `json:"chosen"`
	Reason    string `json:"reason"`
}

// ExitNodeStatus is Status.ExitNode.
type ExitNodeStatus struct {
	Peer       string `json:"peer"`
	PeerName   string `json:"peer_name"`
	Auto       bool   `json:"auto"`
	Active     bool   `json:"active"`
	Connected  bool   `json:"connected"`
	KillSwitch bool   `json:"kill_switch"`
	AllowLAN   bool   `json:"allow_lan"`
	Reason     string `json:"reason"`
}

// Route returns the entry for network through the routing peer named peer
// (or nil).
func (s *Status) Route(network, peer string) *RouteStatus { return findRoute(s.Routes, network, peer) }

func findRoute(rs []RouteStatus, network, peer string) *RouteStatus {
	for i := range rs {
		if rs[i].Network == network && rs[i].PeerName == peer {
			return &rs[i]
		}
	}
	return nil
}

// ChosenRoute returns the chosen entry for network (or nil).
func ChosenRoute(rs []RouteStatus, network string) *RouteStatus {
	for i := range rs {
		if rs[i].Network == network && rs[i].Chosen {
			return &rs[i]
		}
	}
	return nil
}

// CLI runs `petrel ARGS --state-dir DIR` against the agent's socket (no
// namespace needed) and returns its combined output.
func (a *Agent) CLI(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	argv := append(append([]string{}, args...), "--state-dir", a.StateDir)
	out, err := exec.CommandContext(ctx, a.Bins.Petrel, argv...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("petrel %s (%s): %w: %s", strings.Join(args, " "), a.Name, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Routes runs `petrel routes --json`.
func (a *Agent) Routes(ctx context.Context) ([]RouteStatus, error) {
	out, err := a.CLI(ctx, "routes", "--json")
	if err != nil {
		return nil, err
	}
	var rs []RouteStatus
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		return nil, fmt.Errorf("parse routes of %s %q: %w", a.Name, out, err)
	}
	return rs, nil
}

// WaitRoutes polls `petrel routes --json` until cond holds.
func (a *Agent) WaitRoutes(ctx context.Context, timeout time.Duration, what string, cond func([]RouteStatus) bool) ([]RouteStatus, error) {
	var last []RouteStatus
	var lastErr error
	err := poll(ctx, timeout, 200*time.Millisecond, func() bool {
		rs, err := a.Routes(ctx)
		if err != nil {
			lastErr = err
			return false
		}
		last = rs
		return cond(rs)
	})
	if err != nil {
		js, _ := json.Marshal(last)
		return last, fmt.Errorf("agent %s: waiting for %s: %w; last routes %s (err %v)\n%s", a.Name, what, err, js, lastErr, tail(a.Proc.Output(), 3000))
	}
	return last, nil
}

// ExitNode runs `petrel exit-node ARGS` ("use", "e", "--kill-switch"; "off").
func (a *Agent) ExitNode(ctx context.Context, args ...string) error {
	_, err := a.CLI(ctx, append([]string{"exit-node"}, args...)...)
	return err
}

// Kill sends SIGKILL and waits for the process to be gone.
func (a *Agent) Kill() error {
	if err := a.Proc.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-a.Proc.Done()
	return nil
}

// Alive reports whether the agent process still runs.
func (a *Agent) Alive() bool {
	select {
	case <-a.Proc.Done():
		return false
	default:
		return true
	}
}

// RouteSpec is the body of POST /api/routes.
type RouteSpec struct {
	Network    string   `json:"network"`
	NetworkID  string   `json:"network_id,omitempty"`
	Peer       string   `json:"peer,omitempty"`
	PeerGroups []string `json:"peer_groups,omitempty"`
	Groups     []string `json:"groups"`
	Metric     int      `json:"metric"`
	Masquerade bool     `json:"masquerade"`
	AutoApply  bool     `json:"auto_apply"`
}

// AddRoute creates a route through the REST API and returns its ID.
func (c *Cluster) AddRoute(ctx context.Context, r RouteSpec) (string, error) {
	if len(r.Groups) == 0 {
		r.Groups = []string{"All"}
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := c.API(ctx, "POST", "/api/routes", r, &out); err != nil {
		return "", err
	}
	return out.ID, nil
}

// HostSnapshot is what a routing agent may change on a host's kernel:
// rules, routes of every table, the nftables ruleset and the sysctls of
// forwarding and reverse-path filtering, as text to compare byte for byte.
//
// Addresses still in IPv6 duplicate address detection are waited for
// first (a veth's link-local address enters the local table when DAD
// ends, a second or two after the link came up).
func HostSnapshot(ctx context.Context, h *lab.Host) (string, error) {
	var tentative string
	if err := poll(ctx, 10*time.Second, 100*time.Millisecond, func() bool {
		tentative, _ = h.Run(ctx, "ip", "-6", "addr", "show", "tentative")
		return strings.TrimSpace(tentative) == ""
	}); err != nil {
		return "", fmt.Errorf("snapshot of %s: addresses stay tentative: %s", h.Name, tentative)
	}
	var b strings.Builder
	for _, argv := range [][]string{
		{"ip", "rule", "show"},
		{"ip", "-6", "rule", "show"},
		{"ip", "route", "show", "table", "all"},
		{"ip", "-6", "route", "show", "table", "all"},
		{"nft", "list", "ruleset"},
		{"sysctl", "net.ipv4.ip_forward", "net.ipv4.conf.all.src_valid_mark", "net.ipv4.conf.all.rp_filter",
			"net.ipv4.conf.default.rp_filter", "net.ipv6.conf.all.forwarding"},
	} {
		out, err := h.Run(ctx, argv...)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "## %s\n%s", strings.Join(argv, " "), out)
	}
	return b.String(), nil
}

// SnapshotDiff returns the lines only in a ("- ") or only in b ("+ ") with
// the section (command) each is in; "" when a == b.
func SnapshotDiff(a, b string) string {
	if a == b {
		return ""
	}
	var d strings.Builder
	only := func(prefix, x, y string) {
		m := map[string]int{}
		for _, l := range strings.Split(y, "\n") {
			m[l]++
		}
		section := ""
		for _, l := range strings.Split(x, "\n") {
			if s, ok := strings.CutPrefix(l, "## "); ok {
				section = s
			}
			if m[l] > 0 {
				m[l]--
				continue
			}
			fmt.Fprintf(&d, "%s%s   [%s]\n", prefix, l, section)
		}
	}
	only("- ", a, b)
	only("+ ", b, a)
	if d.Len() == 0 {
		return "(same lines in another order)\n"
	}
	return d.String()
}

// NftCounters loads an nftables table of named counters into h's namespace
// (script: the table body in nft syntax) after deleting an older one.
func NftCounters(ctx context.Context, ns string, table, script string) error {
	full := fmt.Sprintf("table inet %s {}\ndelete table inet %s\ntable inet %s {\n%s\n}\n", table, table, table, script)
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(full)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("load nft table %s in %s: %w: %s", table, ns, err, out)
	}
	return nil
}

var counterRE = regexp.MustCompile(`packets (\d+) bytes (\d+)`)

// NftCounter reads the packets of a named counter in namespace ns.
func NftCounter(ctx context.Context, ns, table, name string) (uint64, error) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "nft", "list", "counter", "inet", table, name).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("read counter %s/%s in %s: %w: %s", table, name, ns, err, out)
	}
	m := counterRE.FindStringSubmatch(string(out))
	if m == nil {
		return 0, fmt.Errorf("read counter %s/%s in %s: no packets in %q", table, name, ns, out)
	}
	return strconv.ParseUint(m[1], 10, 64)
}

// TCPConns returns the established TCP connections in h's namespace to
// any of the given remote addresses ("ip:port"), as "local -> remote".
func TCPConns(ctx context.Context, h *lab.Host, remotes ...string) (map[string]bool, error) {
	out, err := h.Run(ctx, "ss", "-Htn", "state", "established")
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, r := range remotes {
		want[r] = true
	}
	conns := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		local, remote := f[len(f)-2], f[len(f)-1]
		if want[remote] {
			conns[local+" -> "+remote] = true
		}
	}
	return conns, nil
}
