// Command wgpair runs one Petrel data-plane Device (kernel TUN mode) with a
// single peer on a direct UDP endpoint, for the two-namespace benchmark rig
// (bench/dataplane). It is a lab tool, not part of the agent: nothing
// imports it. It prints "ready" on stdout once the device is up and runs
// until SIGINT/SIGTERM, then removes its interface.
//
//	wgpair -if pt0 -addr 10.100.3.1/24 -key <hex private> -port 51820 \
//	       -peer <hex public> -endpoint 10.99.3.2:51820 -allowed 10.100.3.2/32
package main

import (
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"petrel/client/wg"
	"petrel/internal/keys"
)

func main() {
	ifName := flag.String("if", "pt0", "TUN interface name")
	addr := flag.String("addr", "", "overlay address with prefix length")
	keyHex := flag.String("key", "", "private key (hex)")
	port := flag.Uint("port", 51820, "UDP listen port")
	peerHex := flag.String("peer", "", "peer public key (hex)")
	endpoint := flag.String("endpoint", "", "peer endpoint ip:port")
	allowed := flag.String("allowed", "", "peer allowed IP prefix")
	mtu := flag.Int("mtu", wg.DefaultMTU, "tunnel MTU")
	noOffload := flag.Bool("no-offload", false, "disable UDP GSO/GRO in the bind")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile here until exit")
	verbose := flag.Bool("v", false, "debug logs")
	flag.Parse()
	if err := run(*ifName, *addr, *keyHex, uint16(*port), *peerHex, *endpoint, *allowed, *mtu, *noOffload, *cpuprofile, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "wgpair:", err)
		os.Exit(1)
	}
}

func run(ifName, addr, keyHex string, port uint16, peerHex, endpoint, allowed string, mtu int, noOffload bool, cpuprofile string, verbose bool) error {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	pfx, err := netip.ParsePrefix(addr)
	if err != nil {
		return fmt.Errorf("parse -addr: %w", err)
	}
	var priv keys.Private
	if err := decodeKey(keyHex, priv[:]); err != nil {
		return fmt.Errorf("parse -key: %w", err)
	}
	var pub keys.Public
	if err := decodeKey(peerHex, pub[:]); err != nil {
		return fmt.Errorf("parse -peer: %w", err)
	}
	ap, err := netip.ParsePrefix(allowed)
	if err != nil {
		return fmt.Errorf("parse -allowed: %w", err)
	}
	bind := wg.NewBind(wg.BindConfig{Logger: log, Port: port, DisableOffload: noOffload})
	dev, err := wg.NewDevice(wg.DeviceConfig{InterfaceName: ifName, MTU: mtu, Address: pfx, PrivateKey: priv, Bind: bind, Logger: log})
	if err != nil {
		return err
	}
	defer dev.Close()
	if err := dev.UpsertPeer(pub, []netip.Prefix{ap}, endpoint, 0); err != nil {
		return err
	}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return fmt.Errorf("create profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("start profile: %w", err)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	return nil
}

func decodeKey(s string, dst []byte) error {
	b, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	if len(b) != len(dst) {
		return keys.ErrBadKey
	}
	copy(dst, b)
	return nil
}
