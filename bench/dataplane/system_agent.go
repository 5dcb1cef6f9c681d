package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"petrel/e2e"
	"petrel/lab"
)

// petrelAgent runs the real agent (`petrel up --foreground`, TUN mode, the
// binaries scripts/build.sh produces) in both hosts of the pair, logged in
// to a petrel-server in the same lab (e2e.Cluster: management, signal,
// STUN, two relays; one account with e2e's allow-all policy, All <-> All,
// every protocol, both directions). Unlike wgpair this is the whole agent
// data path, including the userspace packet filter (client/firewall) that
// the agent installs by default; noFirewall starts the agents with the
// hidden `--debug-no-firewall` flag instead.
//
// The hosts sit directly on the lab's internet bridge (OnBridge), so the
// agents reach the control plane without NAT and their direct path is
// host → bridge → host (one more hop than the veth of the other systems).
type petrelAgent struct {
	env        *agentEnv
	noFirewall bool
	agents     [2]*e2e.Agent
}

// agentEnv is shared by the agent systems of one run: one build of the
// binaries and one control plane (a lab holds one). All agents join the
// same account, so with allow-all every agent also has the other systems'
// agents as (idle) peers.
type agentEnv struct {
	dir string // scratch directory for binaries and the cluster

	once    sync.Once
	err     error
	cluster *e2e.Cluster
}

func (e *agentEnv) get(ctx context.Context, l *lab.Lab) (*e2e.Cluster, error) {
	e.once.Do(func() {
		bins, err := e2e.Build(ctx, filepath.Join(e.dir, "bin"))
		if err != nil {
			e.err = err
			return
		}
		e.cluster, e.err = e2e.NewCluster(ctx, l, bins, filepath.Join(e.dir, "cluster"))
	})
	return e.cluster, e.err
}

func (s *petrelAgent) Name() string {
	if s.noFirewall {
		return "petrel agent, --debug-no-firewall (TUN, MTU 1280)"
	}
	return "petrel agent, filter on (TUN, MTU 1280)"
}

// OnBridge makes setupRig put this system's hosts on the internet bridge.
func (s *petrelAgent) OnBridge() bool { return true }

func (s *petrelAgent) Setup(ctx context.Context, p Pair) (Endpoints, error) {
	c, err := s.env.get(ctx, p.Lab)
	if err != nil {
		return Endpoints{}, err
	}
	// --dns-mode off: the resolver is not in the measured path and the
	// host's resolv.conf must keep pointing at the lab DNS.
	extra := []string{"--dns-mode", "off"}
	if s.noFirewall {
		extra = append(extra, "--debug-no-firewall")
	}
	for i, h := range []*lab.Host{p.A, p.B} {
		s.agents[i] = c.AgentOn(h, extra...)
		if err := s.agents[i].Start(); err != nil {
			return Endpoints{}, err
		}
	}
	a, b := s.agents[0], s.agents[1]
	sa, err := a.WaitPeerPath(ctx, 120*time.Second, b.Name, "p2p")
	if err != nil {
		return Endpoints{}, err
	}
	sb, err := b.WaitPeerPath(ctx, 120*time.Second, a.Name, "p2p")
	if err != nil {
		return Endpoints{}, err
	}
	ipA, err := netip.ParseAddr(sa.OverlayIP())
	if err != nil {
		return Endpoints{}, fmt.Errorf("overlay address of %s: %w", a.Name, err)
	}
	ipB, err := netip.ParseAddr(sb.OverlayIP())
	if err != nil {
		return Endpoints{}, fmt.Errorf("overlay address of %s: %w", b.Name, err)
	}
	p.Log.Info("agents connected", "a", ipA, "b", ipB,
		"path", sa.Peer(b.Name).LocalCandidate+" -> "+sa.Peer(b.Name).RemoteCandidate)
	return Endpoints{A: ipA, B: ipB, PIDs: []int{a.Proc.Pid(), b.Proc.Pid()}}, nil
}

func (s *petrelAgent) Teardown() error {
	for _, a := range s.agents {
		if a != nil && a.Proc != nil {
			_ = a.Stop()
		}
	}
	return nil
}

// filterCounts are the packet filter's counters for the peer on the other
// side of the pair, summed over both agents.
type filterCounts struct {
	present                bool // false: no "firewall" object in the status (filter off)
	inAllowed, inDropped   uint64
	outAllowed, outDropped uint64
}

func (f filterCounts) sub(g filterCounts) filterCounts {
	return filterCounts{present: f.present && g.present,
		inAllowed: f.inAllowed - g.inAllowed, inDropped: f.inDropped - g.inDropped,
		outAllowed: f.outAllowed - g.outAllowed, outDropped: f.outDropped - g.outDropped}
}

// agentStatus is the part of `petrel status --json` the rig reads (the
// firewall object is not in e2e.Status).
type agentStatus struct {
	Peers []struct {
		Name     string `json:"name"`
		Firewall *struct {
			InAllowed  uint64 `json:"in_allowed"`
			InDropped  uint64 `json:"in_dropped"`
			OutAllowed uint64 `json:"out_allowed"`
			OutDropped uint64 `json:"out_dropped"`
		} `json:"firewall"`
	} `json:"peers"`
}

// FilterCounts reads both agents' filter counters for each other.
func (s *petrelAgent) FilterCounts(ctx context.Context) (filterCounts, error) {
	fc := filterCounts{present: true}
	for i, a := range s.agents {
		other := s.agents[1-i].Name
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		out, err := exec.CommandContext(cctx, a.Bins.Petrel, "status", "--json", "--state-dir", a.StateDir).Output()
		cancel()
		if err != nil {
			return fc, fmt.Errorf("petrel status (%s): %w", a.Name, err)
		}
		var st agentStatus
		if err := json.Unmarshal(out, &st); err != nil {
			return fc, fmt.Errorf("parse status of %s: %w", a.Name, err)
		}
		found := false
		for _, p := range st.Peers {
			if p.Name != other {
				continue
			}
			found = true
			if p.Firewall == nil {
				fc.present = false
				continue
			}
			fc.inAllowed += p.Firewall.InAllowed
			fc.inDropped += p.Firewall.InDropped
			fc.outAllowed += p.Firewall.OutAllowed
			fc.outDropped += p.Firewall.OutDropped
		}
		if !found {
			return fc, fmt.Errorf("status of %s: no peer %s", a.Name, other)
		}
	}
	return fc, nil
}

// agentSystems are the agent entries of systemsByName.
func agentSystems(dir string) map[string]func() System {
	env := &agentEnv{dir: dir}
	return map[string]func() System{
		"petrel-agent":      func() System { return &petrelAgent{env: env} },
		"petrel-agent-nofw": func() System { return &petrelAgent{env: env, noFirewall: true} },
	}
}
