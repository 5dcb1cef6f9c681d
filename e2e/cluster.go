package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"petrel/lab"
)

// Ports and URLs of the lab control plane.
const (
	ServerPort = "8080"
	STUNPort   = "3478"
	STUNPort2  = "3479"
	// ManagementURL is what agents use (resolved through the lab DNS).
	ManagementURL = "http://" + lab.MgmtName + ":" + ServerPort
	// PoolURL is the relay pool root management advertises.
	PoolURL = "rel://" + lab.RelayPoolName + ":" + ServerPort
)

// RelayInstanceURL returns the instance URL of relay host i (0 = eu-1, 1 = us-1).
func RelayInstanceURL(i int) string {
	return "rel://" + []string{lab.RelayEU, lab.RelayUS}[i] + ":" + ServerPort
}

// Binaries are the paths of the built executables.
type Binaries struct {
	Petrel string
	Server string
}

// Build compiles petrel and petrel-server into dir with scripts/build.sh, the
// same build users get (run from inside the module).
func Build(ctx context.Context, dir string) (Binaries, error) {
	b := Binaries{Petrel: filepath.Join(dir, "petrel"), Server: filepath.Join(dir, "petrel-server")}
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil || len(bytes.TrimSpace(gomod)) == 0 {
		return Binaries{}, fmt.Errorf("find the module root (go env GOMOD): %v", err)
	}
	script := filepath.Join(filepath.Dir(string(bytes.TrimSpace(gomod))), "scripts", "build.sh")
	cmd := exec.CommandContext(ctx, "bash", script, dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return Binaries{}, fmt.Errorf("build binaries: %w: %s", err, out)
	}
	return b, nil
}

// Cluster is a lab with the Petrel control plane running in it.
type Cluster struct {
	Lab      *lab.Lab
	CP       *lab.ControlPlane
	Bins     Binaries
	Dir      string // scratch directory (data dirs, agent state)
	DataDir  string // management server data dir
	SetupKey string // reusable setup key
	Server   *lab.Proc
	Relays   []*lab.Proc

	seq int
}

// NewCluster adds the control plane to l, starts the management+signal+STUN
// server and the two relay instances, and creates a reusable setup key.
// dir is a scratch directory the caller removes.
func NewCluster(ctx context.Context, l *lab.Lab, bins Binaries, dir string) (*Cluster, error) {
	cp, err := l.AddControlPlane()
	if err != nil {
		return nil, err
	}
	c := &Cluster{Lab: l, CP: cp, Bins: bins, Dir: dir, DataDir: filepath.Join(dir, "server")}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("new cluster: %w", err)
	}
	if err := c.StartServer(ctx); err != nil {
		return nil, err
	}
	c.Relays = make([]*lab.Proc, len(cp.Relays))
	for i := range cp.Relays {
		if err := c.StartRelay(ctx, i); err != nil {
			return nil, err
		}
	}
	key, err := c.createSetupKey(ctx)
	if err != nil {
		return nil, err
	}
	c.SetupKey = key
	if err := c.AllowAll(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// StartServer starts (or restarts, same data dir) the management, signal
// and STUN server and waits until it accepts TCP connections. The relay
// secret file is created by this server on first start, so the relays must
// start after it.
func (c *Cluster) StartServer(ctx context.Context) error {
	s := c.CP.Server
	p, err := s.Start(context.Background(), c.Bins.Server, "run", "--data-dir", c.DataDir,
		"--listen", s.Addr.String()+":"+ServerPort, "--stun-listen", s.Addr.String()+":"+STUNPort,
		"--public-url", ManagementURL, "--relay-url", PoolURL,
		"--stun-url", "stun:"+lab.StunName+":"+STUNPort,
		// The server's second STUN port (primary + 1) lets agents detect symmetric NATs.
		"--stun-url", "stun:"+lab.StunName+":"+STUNPort2,
		"--components", "management,signal,stun")
	if err != nil {
		return err
	}
	c.Server = p
	if err := waitTCP(ctx, s, s.Addr.String()+":"+ServerPort, p); err != nil {
		return fmt.Errorf("petrel-server: %w", err)
	}
	return nil
}

// StartRelay starts (or restarts, same data dir) relay instance i and
// waits until it accepts TCP connections.
func (c *Cluster) StartRelay(ctx context.Context, i int) error {
	h := c.CP.Relays[i]
	rd := filepath.Join(c.Dir, "relay-"+h.Name)
	if err := os.MkdirAll(rd, 0o700); err != nil {
		return fmt.Errorf("start relay %s: %w", h.Name, err)
	}
	p, err := h.Start(context.Background(), c.Bins.Server, "run", "--components", "relay",
		"--data-dir", rd, "--listen", h.Addr.String()+":"+ServerPort,
		"--relay-secret-file", filepath.Join(c.DataDir, "relay-secret"),
		"--relay-instance-url", RelayInstanceURL(i))
	if err != nil {
		return err
	}
	c.Relays[i] = p
	if err := waitTCP(ctx, h, h.Addr.String()+":"+ServerPort, p); err != nil {
		return fmt.Errorf("relay %s: %w", h.Name, err)
	}
	return nil
}

// StopServer stops the management server (SIGTERM, then SIGKILL).
func (c *Cluster) StopServer() error {
	if c.Server == nil {
		return nil
	}
	return c.Server.Stop()
}

func (c *Cluster) serverURL() string { return "http://" + c.CP.Server.Addr.String() + ":" + ServerPort }

func (c *Cluster) tokenFile() string { return filepath.Join(c.DataDir, "admin-token") }

func (c *Cluster) createSetupKey(ctx context.Context) (string, error) {
	var last error
	err := poll(ctx, 30*time.Second, 200*time.Millisecond, func() bool {
		out, err := c.CP.Server.Run(ctx, c.Bins.Server, "setup-key", "create", "--server", c.serverURL(),
			"--token-file", c.tokenFile(), "--reusable", "--json")
		if err != nil {
			last = err
			return false
		}
		var k struct {
			Key string `json:"key"`
		}
		if err := json.Unmarshal([]byte(out), &k); err != nil || k.Key == "" {
			last = fmt.Errorf("parse setup key output %q: %v", out, err)
			return false
		}
		c.SetupKey = k.Key
		return true
	})
	if err != nil {
		return "", fmt.Errorf("create setup key: %w (last: %v)", err, last)
	}
	return c.SetupKey, nil
}

// ServerPeer is a peer as the management REST API lists it.
type ServerPeer struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	IP        string `json:"ip"`
	FQDN      string `json:"fqdn"`
	Connected bool   `json:"connected"`
}

// Peers lists the account's peers through `petrel-server peers list --json`.
func (c *Cluster) Peers(ctx context.Context) ([]ServerPeer, error) {
	out, err := c.CP.Server.Run(ctx, c.Bins.Server, "peers", "list", "--server", c.serverURL(),
		"--token-file", c.tokenFile(), "--json")
	if err != nil {
		return nil, err
	}
	var ps []ServerPeer
	if err := json.Unmarshal([]byte(out), &ps); err != nil {
		return nil, fmt.Errorf("parse peers list %q: %w", out, err)
	}
	return ps, nil
}

// waitTCP waits until addr accepts a TCP connection from inside h, failing
// early when p exits.
func waitTCP(ctx context.Context, h *lab.Host, addr string, p *lab.Proc) error {
	return poll(ctx, 30*time.Second, 100*time.Millisecond, func() bool {
		select {
		case <-p.Done():
			return true
		default:
		}
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		cn, err := h.DialContext(dctx, "tcp", addr)
		if err != nil {
			return false
		}
		cn.Close()
		return true
	}, func() error {
		select {
		case <-p.Done():
			return fmt.Errorf("process exited: %v: %s", p.Wait(), tail(p.Output(), 2000))
		default:
			return nil
		}
	})
}

// ErrTimeout is returned by Poll when the deadline passes.
var ErrTimeout = errors.New("condition not met before the deadline")

// Poll calls cond every interval until it returns true or timeout passes.
func Poll(ctx context.Context, timeout, interval time.Duration, cond func() bool) error {
	return poll(ctx, timeout, interval, cond)
}

func poll(ctx context.Context, timeout, interval time.Duration, cond func() bool, after ...func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if cond() {
			for _, f := range after {
				if err := f(); err != nil {
					return err
				}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %s: %w", timeout, ErrTimeout)
		case <-time.After(interval):
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
