package wg

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"golang.zx2c4.com/wireguard/conn"

	"petrel/internal/keys"
)

// RelayPrefix starts the text form of a relay endpoint:
//
//	relay:<base64 peer public key>@<relay instance URL>
//
// for example "relay:hE3f...Q=@rels://eu-1.relay.example.net:443". The URL is
// kept verbatim (it must not contain whitespace); the key is the remote peer's
// WireGuard public key, which is how the relay addresses it. Any other endpoint
// string must be a literal "ip:port" ("[v6]:port" for IPv6).
const RelayPrefix = "relay:"

// ErrBadEndpoint is returned by ParseEndpoint for strings that are neither a
// UDP "ip:port" nor a relay endpoint.
var ErrBadEndpoint = errors.New("invalid endpoint")

// UDPEndpoint is a direct path: a remote UDP address. Values are immutable and
// may be shared between goroutines.
type UDPEndpoint struct {
	ap netip.AddrPort
	ua *net.UDPAddr // prebuilt for sendmmsg, never mutated
}

var _ conn.Endpoint = (*UDPEndpoint)(nil)

func newUDPEndpoint(ap netip.AddrPort) *UDPEndpoint {
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	return &UDPEndpoint{ap: ap, ua: net.UDPAddrFromAddrPort(ap)}
}

// AddrPort returns the remote address.
func (e *UDPEndpoint) AddrPort() netip.AddrPort { return e.ap }

// ClearSrc is a no-op: the bind does not pin source addresses.
func (e *UDPEndpoint) ClearSrc() {}

// SrcToString returns "" (no sticky source).
func (e *UDPEndpoint) SrcToString() string { return "" }

// DstToString returns "ip:port".
func (e *UDPEndpoint) DstToString() string { return e.ap.String() }

// DstToBytes returns the address bytes used for WireGuard's mac2 cookies.
func (e *UDPEndpoint) DstToBytes() []byte {
	b, _ := e.ap.MarshalBinary()
	return b
}

// DstIP returns the remote IP.
func (e *UDPEndpoint) DstIP() netip.Addr { return e.ap.Addr() }

// SrcIP returns the zero address.
func (e *UDPEndpoint) SrcIP() netip.Addr { return netip.Addr{} }

// RelayEndpoint is a relayed path: the remote peer's key and the relay
// instance that peer is reachable on. Values are immutable.
type RelayEndpoint struct {
	key keys.Public
	url string
}

var _ conn.Endpoint = (*RelayEndpoint)(nil)

// Peer returns the remote peer's public key.
func (e *RelayEndpoint) Peer() keys.Public { return e.key }

// InstanceURL returns the relay instance URL.
func (e *RelayEndpoint) InstanceURL() string { return e.url }

// ClearSrc is a no-op.
func (e *RelayEndpoint) ClearSrc() {}

// SrcToString returns "".
func (e *RelayEndpoint) SrcToString() string { return "" }

// DstToString returns the text form accepted by ParseEndpoint.
func (e *RelayEndpoint) DstToString() string { return RelayEndpointString(e.key, e.url) }

// DstToBytes returns key||url, used by WireGuard for mac2 cookies.
func (e *RelayEndpoint) DstToBytes() []byte {
	b := make([]byte, 0, len(e.key)+len(e.url))
	b = append(b, e.key[:]...)
	return append(b, e.url...)
}

// DstIP returns the zero address: a relay endpoint has no IP of its own.
func (e *RelayEndpoint) DstIP() netip.Addr { return netip.Addr{} }

// SrcIP returns the zero address.
func (e *RelayEndpoint) SrcIP() netip.Addr { return netip.Addr{} }

// RelayEndpointString formats a relay endpoint (see RelayPrefix).
func RelayEndpointString(peer keys.Public, instanceURL string) string {
	return RelayPrefix + peer.String() + "@" + instanceURL
}

// UDPEndpointString formats a direct endpoint.
func UDPEndpointString(ap netip.AddrPort) string { return ap.String() }

// ParseEndpoint parses a UDP ("ip:port") or relay ("relay:<key>@<url>")
// endpoint string. It is a pure function of its input.
func ParseEndpoint(s string) (conn.Endpoint, error) {
	if rest, ok := strings.CutPrefix(s, RelayPrefix); ok {
		k, u, ok := strings.Cut(rest, "@")
		if !ok {
			return nil, fmt.Errorf("parse relay endpoint: missing '@': %w", ErrBadEndpoint)
		}
		key, err := keys.ParsePublic(k)
		if err != nil {
			return nil, fmt.Errorf("parse relay endpoint key: %w", ErrBadEndpoint)
		}
		if key.IsZero() {
			return nil, fmt.Errorf("parse relay endpoint: zero key: %w", ErrBadEndpoint)
		}
		if err := checkInstanceURL(u); err != nil {
			return nil, err
		}
		return &RelayEndpoint{key: key, url: u}, nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return nil, fmt.Errorf("parse endpoint %q: %w", s, ErrBadEndpoint)
	}
	if !ap.Addr().IsValid() || ap.Addr().IsUnspecified() || ap.Port() == 0 || ap.Addr().Zone() != "" {
		return nil, fmt.Errorf("parse endpoint %q: unusable address: %w", s, ErrBadEndpoint)
	}
	return newUDPEndpoint(ap), nil
}

// checkInstanceURL rejects URLs that could not travel through the UAPI text
// protocol (which is line based) or are obviously not URLs.
func checkInstanceURL(u string) error {
	if u == "" || len(u) > 1024 {
		return fmt.Errorf("parse relay endpoint: bad instance URL length: %w", ErrBadEndpoint)
	}
	for i := 0; i < len(u); i++ {
		if c := u[i]; c <= ' ' || c == 0x7f {
			return fmt.Errorf("parse relay endpoint: control or space in instance URL: %w", ErrBadEndpoint)
		}
	}
	return nil
}
