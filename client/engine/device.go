package engine

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/transport/v5"

	"petrel/client/wg"
	"petrel/proto/managementpb"
)

// srflxCacheTTL is how long the ICE mux reuses a server-reflexive address.
const srflxCacheTTL = 2 * time.Second

// newICEMux is the ICE mux on the shared socket. The mux caches the
// server-reflexive address per STUN server (25 s by default): after the
// NAT's public address changes, every retry within that time would offer
// the dead address, and the direct path stayed down for half a minute
// (e2e TestRecoversAfterPublicAddressChange). A short cache still serves
// the peers that gather together.
func newICEMux(conn net.PacketConn, n transport.Net) *ice.UniversalUDPMuxDefault {
	return ice.NewUniversalUDPMuxDefault(ice.UniversalUDPMuxParams{
		UDPConn: conn, Net: n, XORMappedAddrCacheTTL: srflxCacheTTL,
	})
}

// setupDevice creates the Bind, the WireGuard device (TUN or netstack) with
// the overlay address, the ICE mux on the shared socket and, in netstack
// mode, the SOCKS5 proxy.
func (e *Engine) setupDevice(pc *managementpb.PeerConfig) error {
	if pc == nil {
		return fmt.Errorf("management sent no peer config")
	}
	addr, err := netip.ParsePrefix(pc.Address)
	if err != nil {
		return fmt.Errorf("management sent a bad overlay address %q: %w", pc.Address, err)
	}
	e.mu.Lock()
	e.self = pc
	e.mu.Unlock()
	e.bind = wg.NewBind(wg.BindConfig{Logger: e.cfg.Logger, Port: uint16(e.wgPort())})
	if e.cfg.BlockDirect != nil {
		e.bind.SetBlockUDP(e.cfg.BlockDirect)
	}
	if !e.cfg.Netstack && e.cfg.Journal != nil {
		if err := e.cfg.Journal.Record("link", e.cfg.InterfaceName, nil); err != nil {
			return fmt.Errorf("journal interface: %w", err)
		}
	}
	var filter wg.PacketFilter
	if e.fw != nil {
		filter = e.fw
	}
	e.dev, err = wg.NewDevice(wg.DeviceConfig{
		Netstack:      e.cfg.Netstack,
		InterfaceName: e.cfg.InterfaceName,
		MTU:           e.cfg.MTU,
		Address:       addr,
		PrivateKey:    e.cfg.Key,
		Bind:          e.bind,
		Filter:        filter,
		Logger:        e.cfg.Logger,
	})
	if err != nil {
		return fmt.Errorf("create WireGuard device: %w", err)
	}
	if n := e.dev.InterfaceName(); n != "" && n != e.cfg.InterfaceName {
		e.cfg.InterfaceName = n // the system's choice (macOS: "utun" -> "utun7")
	}
	un, err := newUnderlayNet(e.cfg.InterfaceName, e.cfg.ICELoopback)
	if err != nil {
		return err
	}
	e.mux = newICEMux(e.bind.ICEConn(), un)
	if e.cfg.Netstack {
		a, err := e.dev.ServeSOCKS5(e.ctx, e.cfg.SOCKS5Addr, wg.SOCKSOptions{Outside: e.outsideOverlay, Resolve: e.socksResolve})
		if err != nil {
			return fmt.Errorf("start SOCKS5 proxy: %w", err)
		}
		e.socks = a.String()
		e.log.Info("SOCKS5 proxy into the overlay", "addr", e.socks)
	}
	e.log.Info("WireGuard device up", "address", addr, "netstack", e.cfg.Netstack, "listen", e.bind.LocalAddr())
	return nil
}

// wgPort is the configured WireGuard port, else the previous run's when it
// is still free (peers' caches point at it), else 0 (random).
func (e *Engine) wgPort() int {
	if e.cfg.WGPort != 0 || e.keepPort == 0 {
		return e.cfg.WGPort
	}
	pc, err := net.ListenPacket("udp", net.JoinHostPort("", strconv.Itoa(e.keepPort)))
	if err != nil {
		e.log.Info("previous WireGuard port is taken; using a new one", "port", e.keepPort, "err", err)
		return 0
	}
	pc.Close()
	return e.keepPort
}
