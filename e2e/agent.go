package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"petrel/lab"
)

// Iface is the TUN interface name agents use.
const Iface = "petrel0"

// Status is `petrel status --json` (docs/cli.md).
type Status struct {
	State      string `json:"state"`
	Management struct {
		URL       string `json:"url"`
		Connected bool   `json:"connected"`
	} `json:"management"`
	Signal struct {
		Connected bool `json:"connected"`
	} `json:"signal"`
	Relay struct {
		HomeURL   string `json:"home_url"`
		Connected bool   `json:"connected"`
	} `json:"relay"`
	IP        string       `json:"ip"`
	FQDN      string       `json:"fqdn"`
	PublicKey string       `json:"public_key"`
	Peers     []PeerStatus `json:"peers"`
	LastError string       `json:"last_error"`
	// Routes and ExitNode: see RouteStatus (routes.go).
	Routes   []RouteStatus   `json:"routes"`
	ExitNode *ExitNodeStatus `json:"exit_node"`
}

// PeerStatus is one entry of Status.Peers.
type PeerStatus struct {
	Name            string  `json:"name"`
	FQDN            string  `json:"fqdn"`
	IP              string  `json:"ip"`
	PublicKey       string  `json:"public_key"`
	Status          string  `json:"status"`
	Path            string  `json:"path"`
	RelayURL        string  `json:"relay_url"`
	RelayReason     string  `json:"relay_reason"`
	LocalCandidate  string  `json:"local_candidate"`
	RemoteCandidate string  `json:"remote_candidate"`
	LatencyMs       float64 `json:"latency_ms"`
	LastHandshake   string  `json:"last_handshake"`
	RxBytes         uint64  `json:"rx_bytes"`
	TxBytes         uint64  `json:"tx_bytes"`
}

// OverlayIP returns the address part of Status.IP ("100.x.y.z/16").
func (s *Status) OverlayIP() string {
	ip, _, _ := strings.Cut(s.IP, "/")
	return ip
}

// Peer returns the peer entry with the given name (or nil).
func (s *Status) Peer(name string) *PeerStatus {
	for i := range s.Peers {
		if s.Peers[i].Name == name {
			return &s.Peers[i]
		}
	}
	return nil
}

// Agent is a `petrel up --foreground` process on a lab host.
type Agent struct {
	Name     string
	Host     *lab.Host
	Proc     *lab.Proc
	StateDir string
	Bins     Binaries
	Args     []string // extra flags of `petrel up`
	c        *Cluster
}

// NewAgent creates a host behind a NAT of the given kind and starts an
// agent on it named name (extra flags are appended to `petrel up`).
func (c *Cluster) NewAgent(ctx context.Context, name string, kind lab.NATKind, extra ...string) (*Agent, error) {
	h, err := c.Lab.AddNATHost(name, kind)
	if err != nil {
		return nil, err
	}
	a := c.AgentOn(h, extra...)
	if err := a.Start(); err != nil {
		return nil, err
	}
	return a, nil
}

// NewAgentHost creates a host behind a NAT and an unstarted agent on it
// (impair the host first, then Start).
func (c *Cluster) NewAgentHost(ctx context.Context, name string, kind lab.NATKind, extra ...string) (*Agent, error) {
	h, err := c.Lab.AddNATHost(name, kind)
	if err != nil {
		return nil, err
	}
	return c.AgentOn(h, extra...), nil
}

// AgentOn returns an unstarted agent for host h with a fresh state dir.
func (c *Cluster) AgentOn(h *lab.Host, extra ...string) *Agent {
	c.seq++
	return &Agent{Name: h.Name, Host: h, Bins: c.Bins, Args: extra, c: c,
		StateDir: filepath.Join(c.Dir, fmt.Sprintf("agent-%s-%d", h.Name, c.seq))}
}

// Start starts the agent process (again, after Stop: same state dir).
func (a *Agent) Start() error {
	if err := os.MkdirAll(a.StateDir, 0o700); err != nil {
		return fmt.Errorf("start agent %s: %w", a.Name, err)
	}
	argv := append([]string{a.Bins.Petrel, "up", "--foreground", "--management-url", ManagementURL,
		"--setup-key", a.c.SetupKey, "--hostname", a.Name, "--state-dir", a.StateDir,
		"--interface", Iface, "--timeout", "120s"}, a.Args...)
	p, err := a.Host.Start(context.Background(), argv...)
	if err != nil {
		return err
	}
	a.Proc = p
	return nil
}

// Status runs `petrel status --json` against the agent's socket. The
// socket lives in the file system, so the CLI needs no namespace.
func (a *Agent) Status(ctx context.Context) (*Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, a.Bins.Petrel, "status", "--json", "--state-dir", a.StateDir).Output()
	if err != nil {
		return nil, fmt.Errorf("petrel status (%s): %w", a.Name, err)
	}
	var s Status
	if err := json.Unmarshal(out, &s); err != nil {
		return nil, fmt.Errorf("parse status of %s: %w", a.Name, err)
	}
	return &s, nil
}

// WaitStatus polls the status until cond holds, for up to timeout; the
// error carries the last status seen and the agent's output tail.
func (a *Agent) WaitStatus(ctx context.Context, timeout time.Duration, what string, cond func(*Status) bool) (*Status, error) {
	var last *Status
	var lastErr error
	err := poll(ctx, timeout, 250*time.Millisecond, func() bool {
		select {
		case <-a.Proc.Done():
			return true
		default:
		}
		s, err := a.Status(ctx)
		if err != nil {
			lastErr = err
			return false
		}
		last = s
		return cond(s)
	})
	select {
	case <-a.Proc.Done():
		return last, fmt.Errorf("agent %s exited while waiting for %s: %v\n%s", a.Name, what, a.Proc.Wait(), tail(a.Proc.Output(), 3000))
	default:
	}
	if err != nil {
		js, _ := json.Marshal(last)
		return last, fmt.Errorf("agent %s: waiting for %s: %w; last status %s (err %v)\n%s", a.Name, what, err, js, lastErr, tail(a.Proc.Output(), 3000))
	}
	return last, nil
}

// WaitPeerPath waits until the agent sees peer connected on path ("p2p"
// or "relay"); it returns the agent's status.
func (a *Agent) WaitPeerPath(ctx context.Context, timeout time.Duration, peer, path string) (*Status, error) {
	return a.WaitStatus(ctx, timeout, "peer "+peer+" on "+path, func(s *Status) bool {
		p := s.Peer(peer)
		return s.State == "connected" && p != nil && p.Status == "connected" && p.Path == path
	})
}

// Stop sends SIGTERM and waits for the agent to exit (SIGKILL after 10 s).
func (a *Agent) Stop() error { return a.Proc.Stop() }

// Links returns `ip -o link` inside the agent's namespace.
func (a *Agent) Links(ctx context.Context) (string, error) {
	return a.Host.Run(ctx, "ip", "-o", "link", "show")
}

// HasIface reports whether the agent's TUN interface exists in its namespace.
func (a *Agent) HasIface(ctx context.Context) (bool, error) {
	out, err := a.Links(ctx)
	if err != nil {
		return false, err
	}
	return strings.Contains(out, " "+Iface+":"), nil
}

// RSSKiB returns VmRSS of the agent process in KiB.
func (a *Agent) RSSKiB() (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.Proc.Pid()))
	if err != nil {
		return 0, fmt.Errorf("read agent status: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kib int
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d", &kib); err != nil {
				return 0, fmt.Errorf("parse VmRSS %q: %w", v, err)
			}
			return kib, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", a.Proc.Pid())
}
