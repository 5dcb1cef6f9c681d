package wg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/tun/netstack"

	"petrel/internal/keys"
)

// Defaults for DeviceConfig.
const (
	// DefaultMTU leaves room for WireGuard (32+16 bytes), UDP/IPv6 headers
	// (48 bytes) and a relay frame's overhead on any 1500-byte underlay, and
	// is IPv6's minimum link MTU.
	DefaultMTU = 1280
)

// ErrUnknownPeer is returned by SetEndpoint for a peer the device does not have.
var ErrUnknownPeer = errors.New("unknown peer")

// PacketFilter is the firewall's seam into the data path. Both methods get a
// whole IP packet and report whether it may pass; they are called
// concurrently from several goroutines and must not retain pkt.
type PacketFilter interface {
	// Inbound filters packets decrypted from peers, before the host sees them.
	Inbound(pkt []byte) bool
	// Outbound filters packets from the host, before they are encrypted.
	Outbound(pkt []byte) bool
}

// DeviceConfig configures NewDevice.
type DeviceConfig struct {
	// Netstack selects the gVisor userspace stack (no root) instead of a kernel TUN.
	Netstack bool
	// InterfaceName is the kernel TUN name (default DefaultInterfaceName()); unused in netstack mode.
	InterfaceName string
	// MTU of the overlay interface (default 1280).
	MTU int
	// Address is this peer's overlay address with the overlay prefix length (e.g. 100.64.0.7/16).
	Address netip.Prefix
	// PrivateKey is this peer's WireGuard key.
	PrivateKey keys.Private
	// Bind carries the packets; required.
	Bind *Bind
	// Logger; nil discards.
	Logger *slog.Logger
	// Filter is optional; nil allows everything.
	Filter PacketFilter
}

// PeerStats is one peer's state as wireguard-go reports it.
type PeerStats struct {
	LastHandshake time.Time // zero if never
	RxBytes       uint64
	TxBytes       uint64
	Endpoint      string // "" if none; else ip:port or relay:<key>@<url>
	AllowedIPs    []netip.Prefix
}

// Device is a running WireGuard interface.
type Device struct {
	log  *slog.Logger
	cfg  DeviceConfig
	dev  *device.Device
	tnet *netstack.Net
	tun  tun.Device

	mu        sync.Mutex // serializes configuration changes and Close
	closed    bool
	closeErr  error
	socksWG   sync.WaitGroup
	socksStop []func()

	spoofed sync.Map // wireguard-go's peer name -> *atomic.Uint64 (spoof.go)
}

// NewDevice creates the interface, configures the private key and brings the
// device up (which opens the Bind). On error everything created is removed.
func NewDevice(cfg DeviceConfig) (*Device, error) {
	if cfg.Bind == nil {
		return nil, errors.New("new device: nil bind")
	}
	if !cfg.Address.IsValid() {
		return nil, errors.New("new device: invalid address")
	}
	if cfg.PrivateKey.IsZero() {
		return nil, errors.New("new device: zero private key")
	}
	if cfg.InterfaceName == "" {
		cfg.InterfaceName = DefaultInterfaceName()
	}
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.MTU < 576 || cfg.MTU > 9000 {
		return nil, fmt.Errorf("new device: mtu %d out of range", cfg.MTU)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Device{log: cfg.Logger.With("component", "wg"), cfg: cfg}

	var err error
	if cfg.Netstack {
		d.tun, d.tnet, err = netstack.CreateNetTUN([]netip.Addr{cfg.Address.Addr()}, nil, cfg.MTU)
		if err != nil {
			return nil, fmt.Errorf("create netstack: %w", err)
		}
	} else {
		d.tun, err = createKernelTUN(cfg.InterfaceName, cfg.MTU, cfg.Address)
		if err != nil {
			return nil, err
		}
	}
	var td tun.Device = d.tun
	if cfg.Filter != nil {
		td = newFilterTUN(td, cfg.Filter)
	}
	d.dev = device.NewDevice(td, cfg.Bind, wgLogger(d.log, d.countSpoofed))
	// Must precede peer creation: peers created with an endpoint never roam.
	d.dev.DisableSomeRoamingForBrokenMobileSemantics()
	if err := d.dev.IpcSet("private_key=" + cfg.PrivateKey.Hex() + "\n"); err != nil {
		d.dev.Close()
		return nil, fmt.Errorf("set private key: %w", err)
	}
	if err := d.dev.Up(); err != nil {
		d.dev.Close()
		return nil, fmt.Errorf("bring device up: %w", err)
	}
	gso, gro := cfg.Bind.Offloads()
	d.log.Debug("data plane up", "tun_batch", d.tun.BatchSize(), "mtu", cfg.MTU, "udp_gso", gso, "udp_gro", gro)
	return d, nil
}

// errNoEndpoint ends wireguard-go's error for a send to a peer without an
// endpoint.
const errNoEndpoint = "no known endpoint for peer"

func wgLogger(log *slog.Logger, spoofed func(peer any)) *device.Logger {
	return &device.Logger{
		Verbosef: func(format string, args ...any) {
			if spoofed != nil && strings.HasSuffix(format, spoofFormatSuffix) && len(args) == 1 {
				spoofed(args[0])
			}
			if log.Enabled(context.Background(), slog.LevelDebug) {
				log.Debug(fmt.Sprintf(format, args...))
			}
		},
		Errorf: func(format string, args ...any) {
			msg := fmt.Sprintf(format, args...)
			if strings.HasSuffix(msg, errNoEndpoint) {
				// A peer that answers handshakes has no endpoint until its
				// first path: traffic to it before then is expected.
				log.Debug(msg)
				return
			}
			log.Warn(msg)
		},
	}
}

// Netstack returns the userspace stack (nil in kernel TUN mode).
func (d *Device) Netstack() *netstack.Net { return d.tnet }

// Bind returns the device's bind.
func (d *Device) Bind() *Bind { return d.cfg.Bind }

// UpsertPeer creates or updates a peer: its allowed IPs are replaced, its
// keepalive set (0 = off) and, when endpoint is not "", its endpoint set.
// An endpoint of "" leaves an existing peer's endpoint unchanged and creates
// a new peer without one (it then learns its endpoint from the first
// authenticated packet, once).
func (d *Device) UpsertPeer(pub keys.Public, allowedIPs []netip.Prefix, endpoint string, keepalive time.Duration) error {
	var sb strings.Builder
	sb.WriteString("public_key=" + pub.Hex() + "\nreplace_allowed_ips=true\n")
	for _, p := range allowedIPs {
		if !p.IsValid() {
			return fmt.Errorf("upsert peer %s: invalid allowed ip", pub.Short())
		}
		sb.WriteString("allowed_ip=" + p.Masked().String() + "\n")
	}
	secs := int64(keepalive / time.Second)
	if secs < 0 || secs > 65535 {
		return fmt.Errorf("upsert peer %s: keepalive out of range", pub.Short())
	}
	sb.WriteString("persistent_keepalive_interval=" + strconv.FormatInt(secs, 10) + "\n")
	if endpoint != "" {
		if _, err := ParseEndpoint(endpoint); err != nil {
			return fmt.Errorf("upsert peer %s: %w", pub.Short(), err)
		}
		sb.WriteString("endpoint=" + endpoint + "\n")
	}
	return d.ipcSet(sb.String(), "upsert peer")
}

// RemovePeer removes a peer; removing an unknown peer is not an error.
func (d *Device) RemovePeer(pub keys.Public) error {
	if d.dev.LookupPeer(device.NoisePublicKey(pub)) == nil {
		return nil
	}
	return d.ipcSet("public_key="+pub.Hex()+"\nremove=true\n", "remove peer")
}

// SetEndpoint moves a peer to another path (a UDP or relay endpoint string).
// Sessions and keys are kept; the next packet takes the new path.
func (d *Device) SetEndpoint(pub keys.Public, endpoint string) error {
	if _, err := ParseEndpoint(endpoint); err != nil {
		return fmt.Errorf("set endpoint: %w", err)
	}
	if d.dev.LookupPeer(device.NoisePublicKey(pub)) == nil {
		return fmt.Errorf("set endpoint %s: %w", pub.Short(), ErrUnknownPeer)
	}
	return d.ipcSet("public_key="+pub.Hex()+"\nupdate_only=true\nendpoint="+endpoint+"\n", "set endpoint")
}

func (d *Device) ipcSet(conf, what string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("%s: %w", what, ErrClosed)
	}
	if err := d.dev.IpcSet(conf); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	// wireguard-go only pins (disables roaming for) peers that had an
	// endpoint when created; re-applying pins every peer that has one now.
	d.dev.DisableSomeRoamingForBrokenMobileSemantics()
	return nil
}

// ErrClosed is returned by methods called after Close.
var ErrClosed = errors.New("device closed")

// Stats returns per-peer counters parsed from the UAPI.
func (d *Device) Stats() (map[keys.Public]PeerStats, error) {
	s, err := d.dev.IpcGet()
	if err != nil {
		return nil, fmt.Errorf("get stats: %w", err)
	}
	return parseStats(s)
}

// PeerStats returns one peer's counters; ok is false when the device does
// not have the peer. wireguard-go keeps a peer's counters unexported, so
// after a cheap LookupPeer (which answers "no such peer" without a dump)
// this still reads the UAPI dump, but parses only that peer's section and
// builds no map.
func (d *Device) PeerStats(pub keys.Public) (PeerStats, bool, error) {
	if d.dev.LookupPeer(device.NoisePublicKey(pub)) == nil {
		return PeerStats{}, false, nil
	}
	s, err := d.dev.IpcGet()
	if err != nil {
		return PeerStats{}, false, fmt.Errorf("get peer stats: %w", err)
	}
	return peerSection(s, pub)
}

// peerSection parses the UAPI dump section of one peer.
func peerSection(dump string, pub keys.Public) (PeerStats, bool, error) {
	head := "public_key=" + pub.Hex() + "\n"
	i := 0
	for {
		j := strings.Index(dump[i:], head)
		if j < 0 {
			return PeerStats{}, false, nil
		}
		i += j
		if i == 0 || dump[i-1] == '\n' {
			break
		}
		i += len(head)
	}
	sec := dump[i:]
	if end := strings.Index(sec[len(head):], "\npublic_key="); end >= 0 {
		sec = sec[:len(head)+end+1]
	}
	m, err := parseStats(sec)
	if err != nil {
		return PeerStats{}, false, fmt.Errorf("get peer stats: %w", err)
	}
	st, ok := m[pub]
	return st, ok, nil
}

// Close stops the device, closes the bind and removes the interface.
// It is idempotent.
func (d *Device) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return d.closeErr
	}
	d.closed = true
	stops := d.socksStop
	d.socksStop = nil
	d.mu.Unlock()
	for _, stop := range stops {
		stop()
	}
	d.socksWG.Wait()
	// Down first: it closes the bind and stops every peer's goroutines, so
	// none is still writing into the TUN when Close closes it (wireguard-go
	// closes the TUN before stopping peers, which races with the netstack
	// TUN's Write).
	_ = d.dev.Down()
	d.dev.Close() // closes the TUN (removing a kernel interface) and the bind
	d.closeErr = removeKernelTUN(d.cfg)
	return d.closeErr
}
