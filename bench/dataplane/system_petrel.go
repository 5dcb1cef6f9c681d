package main

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"petrel/internal/keys"
	"petrel/lab"
)

// petrelDevice runs Petrel's data plane (client/wg: our Bind with UDP
// GSO/GRO, wireguard-go's device over a kernel TUN with offloads) in each
// namespace through the wgpair lab tool, one peer on a direct endpoint,
// tunnel MTU 1280. It measures the data plane alone, without management,
// signal or ICE.
type petrelDevice struct {
	build     func() (string, error) // returns the wgpair binary
	mtu       int
	noOffload bool
	procs     []*lab.Proc
}

func (w *petrelDevice) Name() string {
	if w.noOffload {
		return fmt.Sprintf("petrel data plane, no UDP GSO/GRO (TUN, MTU %d)", w.mtu)
	}
	return fmt.Sprintf("petrel data plane (TUN, MTU %d)", w.mtu)
}

func (w *petrelDevice) Setup(ctx context.Context, p Pair) (Endpoints, error) {
	type end struct {
		h    *lab.Host
		dev  string
		key  keys.Private
		ip   netip.Addr
		peer int
	}
	ends := [2]*end{
		{h: p.A, dev: fmt.Sprintf("%s-pa%d", p.Lab.Prefix(), p.Index), ip: netip.AddrFrom4([4]byte{10, 100, byte(p.Index), 1}), peer: 1},
		{h: p.B, dev: fmt.Sprintf("%s-pb%d", p.Lab.Prefix(), p.Index), ip: netip.AddrFrom4([4]byte{10, 100, byte(p.Index), 2}), peer: 0},
	}
	bin, err := w.build()
	if err != nil {
		return Endpoints{}, err
	}
	for _, e := range ends {
		k, err := keys.NewPrivate()
		if err != nil {
			return Endpoints{}, fmt.Errorf("generate key: %w", err)
		}
		e.key = k
	}
	var pids []int
	for _, e := range ends {
		peer := ends[e.peer]
		argv := []string{bin, "-if", e.dev, "-addr", e.ip.String() + "/24", "-key", e.key.Hex(),
			"-port", "51820", "-peer", peer.key.Public().Hex(),
			"-endpoint", netip.AddrPortFrom(peer.h.Addr, 51820).String(),
			"-allowed", peer.ip.String() + "/32", "-mtu", fmt.Sprint(w.mtu)}
		if w.noOffload {
			argv = append(argv, "-no-offload")
		}
		if profileDir != "" {
			side := "a"
			if e.peer == 0 {
				side = "b"
			}
			argv = append(argv, "-cpuprofile", filepath.Join(profileDir, fmt.Sprintf("%s-%s.prof", w.profileName(), side)))
		}
		proc, err := e.h.Start(ctx, argv...)
		if err != nil {
			return Endpoints{}, err
		}
		w.procs = append(w.procs, proc)
		pids = append(pids, proc.Pid())
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, proc := range w.procs {
		for !strings.Contains(proc.Output(), "ready") {
			select {
			case <-proc.Done():
				return Endpoints{}, fmt.Errorf("wgpair exited: %s", proc.Output())
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return Endpoints{}, fmt.Errorf("wgpair not ready: %s", proc.Output())
			}
		}
	}
	return Endpoints{A: ends[0].ip, B: ends[1].ip, PIDs: pids}, nil
}

// profileDir, when set (-cpuprofile-dir), receives the tunnel processes'
// CPU profiles; read them with `go tool pprof -top WGPAIR PROFILE`.
var profileDir string

func (w *petrelDevice) profileName() string {
	if w.noOffload {
		return "petrel-no-offload"
	}
	return "petrel"
}

func (w *petrelDevice) Teardown() error {
	for _, p := range w.procs {
		_ = p.Stop()
	}
	return nil
}

// buildWgpair builds the Petrel data-plane lab tool from this module.
func buildWgpair(dir string) (string, error) {
	bin := filepath.Join(dir, "wgpair")
	out, err := exec.Command("go", "build", "-o", bin, "./client/wg/internal/wgpair").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build wgpair: %w: %s", err, out)
	}
	return bin, nil
}

// petrelSystems are the Petrel entries of systemsByName; the binary is
// built into dir on first use.
func petrelSystems(dir string) map[string]func() System {
	var (
		bin string
		err error
	)
	build := func() (string, error) {
		if bin == "" && err == nil {
			bin, err = buildWgpair(dir)
		}
		return bin, err
	}
	return map[string]func() System{
		"petrel":            func() System { return &petrelDevice{build: build, mtu: 1280} },
		"petrel-no-offload": func() System { return &petrelDevice{build: build, mtu: 1280, noOffload: true} },
	}
}
