package ha

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// realAgent is a petrel agent process (userspace WireGuard, netstack).
type realAgent struct {
	name, bin, dir, logPath string
	cmd                     *exec.Cmd
	exited                  chan struct{}
}

// startReal starts `petrel up --foreground --netstack` against the proxy.
func startReal(t testing.TB, bin, dir, name, mgmtURL, setupKey string) *realAgent {
	t.Helper()
	a := &realAgent{name: name, bin: bin, dir: filepath.Join(dir, name), logPath: filepath.Join(dir, name+".log")}
	logf, err := os.OpenFile(a.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	a.cmd = exec.Command(bin, "up", "--foreground", "--netstack", "--ice-loopback", "--hostname", name,
		"--management-url", mgmtURL, "--state-dir", a.dir, "--log-level", envOr("PETREL_HA_AGENT_LOG", "info"))
	a.cmd.Env = append(os.Environ(), "PETREL_SETUP_KEY="+setupKey)
	a.cmd.Stdout, a.cmd.Stderr = logf, logf
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a.exited = make(chan struct{})
	go func() {
		_ = a.cmd.Wait()
		_ = logf.Close()
		close(a.exited)
	}()
	t.Cleanup(a.stop)
	return a
}

func (a *realAgent) stop() {
	select {
	case <-a.exited:
		return
	default:
	}
	_ = a.cmd.Process.Signal(os.Interrupt)
	select {
	case <-a.exited:
	case <-time.After(15 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.exited
	}
}

// agentStatus is the part of `petrel status --json` the rig reads.
type agentStatus struct {
	PublicKey string `json:"public_key"`
	Peers     []struct {
		Name      string `json:"name"`
		PublicKey string `json:"public_key"`
		Status    string `json:"status"`
		Path      string `json:"path"`
		Firewall  *struct {
			InAllowed  uint64 `json:"in_allowed"`
			InDropped  uint64 `json:"in_dropped"`
			OutAllowed uint64 `json:"out_allowed"`
			OutDropped uint64 `json:"out_dropped"`
		} `json:"firewall"`
	} `json:"peers"`
}

// packets are one agent's counters of the packets it exchanged with one
// peer through the tunnel (its firewall counts every packet both ways).
type packets struct{ in, out, dropped uint64 }

func (a *realAgent) packetsWith(ctx context.Context, peer string) (packets, error) {
	st, err := a.status(ctx)
	if err != nil {
		return packets{}, err
	}
	for _, p := range st.Peers {
		if p.Name == peer && p.Firewall != nil {
			f := p.Firewall
			return packets{in: f.InAllowed, out: f.OutAllowed, dropped: f.InDropped + f.OutDropped}, nil
		}
	}
	return packets{}, fmt.Errorf("%s: no counters for %s", a.name, peer)
}

func (a *realAgent) status(ctx context.Context) (agentStatus, error) {
	var st agentStatus
	out, err := exec.CommandContext(ctx, a.bin, "status", "--json", "--state-dir", a.dir).Output()
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(out, &st)
}

// p2pWith reports whether the agent has a direct path to every named peer.
func (a *realAgent) p2pWith(ctx context.Context, names ...string) bool {
	st, err := a.status(ctx)
	if err != nil {
		return false
	}
	ok := 0
	for _, n := range names {
		for _, p := range st.Peers {
			if p.Name == n && p.Status == "connected" && p.Path == "p2p" {
				ok++
			}
		}
	}
	return ok == len(names)
}

// pingResult is the summary of `petrel ping --json`.
type pingResult struct {
	Probes []struct {
		Seq   int    `json:"seq"`
		Path  string `json:"path"`
		Error string `json:"error"`
	} `json:"probes"`
	Summary struct {
		Sent     int            `json:"sent"`
		Received int            `json:"received"`
		Paths    map[string]int `json:"paths"`
	} `json:"summary"`
}

// ping sends count probes, one every interval, to peer through the tunnel.
func (a *realAgent) ping(ctx context.Context, peer string, count int, interval time.Duration) (pingResult, error) {
	var r pingResult
	out, err := exec.CommandContext(ctx, a.bin, "ping", "--json", "--state-dir", a.dir, "-c", fmt.Sprint(count),
		"-i", interval.String(), "-W", "5s", peer).Output()
	if len(out) == 0 {
		return r, fmt.Errorf("petrel ping %s: %v", peer, err)
	}
	if jerr := json.Unmarshal(out, &r); jerr != nil {
		return r, fmt.Errorf("petrel ping %s: %v: %s", peer, jerr, out)
	}
	return r, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
