package main

import (
	"bufio"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"petrel/lab"
)

// Pair is the rig one System runs in: two namespaces joined by a veth
// (underlay MTU 1500), A is the client side (iperf3 -c, ping), B the
// server side.
type Pair struct {
	Lab  *lab.Lab
	A, B *lab.Host
	// Index is unique per system in a run; use it to pick non-clashing
	// overlay subnets (10.100.Index.0/24) and interface names.
	Index int
	// Dir is a scratch directory for this system (keys, binaries, logs).
	Dir string
	Log *slog.Logger
}

// Endpoints is what a System hands the rig after Setup.
type Endpoints struct {
	// A and B are the addresses traffic is sent between (overlay
	// addresses for a tunnel, underlay addresses for raw veth).
	A, B netip.Addr
	// PIDs are the system's own processes (agents, wireguard-go): their
	// CPU time and RSS are charged to the system. Empty for raw veth.
	PIDs []int
}

// System is a data plane under test. Setup brings it up in the pair and
// returns when it is configured (the rig then waits until a ping crosses);
// processes it starts may live as long as ctx. Teardown stops what Setup
// started (the rig removes the namespaces afterwards).
//
// The agent systems (system_agent.go) implement two optional interfaces:
// bridged (their hosts go on the lab's internet bridge, next to the
// control plane) and filterCounter (packet filter counters per round).
type System interface {
	Name() string
	Setup(ctx context.Context, p Pair) (Endpoints, error)
	Teardown() error
}

// systemsByName lists the systems the -systems flag can pick.
func systemsByName(wgBin string) map[string]func() System {
	m := map[string]func() System{
		"veth":         func() System { return rawVeth{} },
		"wireguard-go": func() System { return &wireguardGo{bin: wgBin, mtu: 1280} },
	}
	maps.Copy(m, petrelSystems(filepath.Dir(wgBin))) // system_petrel.go
	maps.Copy(m, agentSystems(filepath.Dir(wgBin)))  // system_agent.go
	return m
}

// rawVeth sends straight over the underlay veth: the ceiling.
type rawVeth struct{}

func (rawVeth) Name() string { return "raw veth (MTU 1500)" }

func (rawVeth) Setup(_ context.Context, p Pair) (Endpoints, error) {
	return Endpoints{A: p.A.Addr, B: p.B.Addr}, nil
}

func (rawVeth) Teardown() error { return nil }

// wireguardGo runs the reference userspace WireGuard (the pinned module
// version from go.mod) in foreground mode in each namespace, configured
// over its UAPI socket.
type wireguardGo struct {
	bin   string
	mtu   int
	procs []*lab.Proc
}

func (w *wireguardGo) Name() string { return fmt.Sprintf("wireguard-go (TUN, MTU %d)", w.mtu) }

func (w *wireguardGo) Setup(ctx context.Context, p Pair) (Endpoints, error) {
	type end struct {
		h    *lab.Host
		dev  string
		key  *ecdh.PrivateKey
		ip   netip.Addr
		peer int
	}
	ends := [2]*end{
		{h: p.A, dev: fmt.Sprintf("%s-wa%d", p.Lab.Prefix(), p.Index), ip: netip.AddrFrom4([4]byte{10, 100, byte(p.Index), 1}), peer: 1},
		{h: p.B, dev: fmt.Sprintf("%s-wb%d", p.Lab.Prefix(), p.Index), ip: netip.AddrFrom4([4]byte{10, 100, byte(p.Index), 2}), peer: 0},
	}
	var pids []int
	for _, e := range ends {
		k, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			return Endpoints{}, fmt.Errorf("generate key: %w", err)
		}
		e.key = k
		cmd := e.h.Command(ctx, w.bin, "-f", e.dev)
		cmd.Env = append(os.Environ(), "LOG_LEVEL=error")
		proc, err := e.h.StartCmd(cmd)
		if err != nil {
			return Endpoints{}, err
		}
		w.procs = append(w.procs, proc)
		pids = append(pids, proc.Pid())
	}
	for _, e := range ends {
		peer := ends[e.peer]
		conf := fmt.Sprintf("private_key=%s\nlisten_port=51820\nreplace_peers=true\npublic_key=%s\nendpoint=%s\nallowed_ip=%s/32\n",
			hex.EncodeToString(e.key.Bytes()), hex.EncodeToString(peer.key.PublicKey().Bytes()),
			netip.AddrPortFrom(peer.h.Addr, 51820), peer.ip)
		if err := uapiSet(ctx, e.dev, conf); err != nil {
			return Endpoints{}, err
		}
		for _, argv := range [][]string{
			{"ip", "addr", "add", e.ip.String() + "/24", "dev", e.dev},
			{"ip", "link", "set", e.dev, "mtu", fmt.Sprint(w.mtu), "up"},
		} {
			if _, err := e.h.Run(ctx, argv...); err != nil {
				return Endpoints{}, err
			}
		}
	}
	return Endpoints{A: ends[0].ip, B: ends[1].ip, PIDs: pids}, nil
}

// uapiSet writes a set operation to wireguard-go's UAPI socket (keys in
// hex), waiting for the socket to appear.
func uapiSet(ctx context.Context, dev, conf string) error {
	path := filepath.Join("/var/run/wireguard", dev+".sock")
	var c net.Conn
	for {
		var err error
		var d net.Dialer
		if c, err = d.DialContext(ctx, "unix", path); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("connect uapi %s: %w", path, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, "set=1\n%s\n", conf); err != nil {
		return fmt.Errorf("write uapi: %w", err)
	}
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			break
		}
		if strings.HasPrefix(line, "errno=") && line != "errno=0" {
			return fmt.Errorf("uapi set on %s: %s", dev, line)
		}
	}
	return sc.Err()
}

func (w *wireguardGo) Teardown() error {
	for _, p := range w.procs {
		_ = p.Stop()
	}
	return nil
}

// buildWireguardGo builds the reference binary from the module version
// pinned in go.mod.
func buildWireguardGo(dir string) (string, error) {
	bin := filepath.Join(dir, "wireguard-go")
	out, err := exec.Command("go", "build", "-o", bin, "golang.zx2c4.com/wireguard").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build wireguard-go: %w: %s", err, out)
	}
	return bin, nil
}
