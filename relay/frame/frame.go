// Package frame is the wire codec of the Petrel relay protocol: one frame per
// WebSocket binary message, laid out as
//
//	version (1 byte) | type (1 byte) | payload
//
// Payloads by type:
//
//	auth       peer key (32) | token (ASCII, 1..MaxTokenLen)
//	auth-ok    instance URL (1..MaxURLLen)
//	transport  peer key (32) | opaque packet (0..MaxPacket)
//	           the key is the destination when a client sends, the source when
//	           the relay delivers, so the relay rewrites it in place
//	close      reason (0..MaxTextLen)
//	ping/pong  opaque echo data (0..MaxPingLen)
//	error      code (1) | peer key (32, zero when not about a peer) | message (0..MaxTextLen)
//
// Any package may import it (the relay server, the relay client, tests and
// benches). All functions are pure and safe for concurrent use; the Append*
// functions append to dst and the Parse* functions return slices aliasing
// their input.
package frame

import (
	"errors"
	"fmt"

	"petrel/internal/keys"
)

// Version is the only protocol version this codec speaks.
const Version byte = 1

// Type is a frame type.
type Type byte

// Frame types.
const (
	TypeAuth      Type = 1
	TypeAuthOK    Type = 2
	TypeTransport Type = 3
	TypeClose     Type = 4
	TypePing      Type = 5
	TypePong      Type = 6
	TypeError     Type = 7
)

func (t Type) String() string {
	switch t {
	case TypeAuth:
		return "auth"
	case TypeAuthOK:
		return "auth-ok"
	case TypeTransport:
		return "transport"
	case TypeClose:
		return "close"
	case TypePing:
		return "ping"
	case TypePong:
		return "pong"
	case TypeError:
		return "error"
	}
	return fmt.Sprintf("type(%d)", byte(t))
}

// Size limits.
const (
	HeaderLen    = 2
	KeyLen       = keys.Len
	MaxPacket    = 65535
	MaxTokenLen  = 512
	MaxURLLen    = 512
	MaxTextLen   = 256
	MaxPingLen   = 64
	TransportLen = HeaderLen + KeyLen // bytes before the packet in a transport frame
	// MaxFrame bounds every frame; a reader must refuse anything larger.
	MaxFrame = TransportLen + MaxPacket
)

// ErrCode is the code carried by an error frame.
type ErrCode byte

// Error codes.
const (
	CodeUnreachable ErrCode = 1 // the destination peer is not connected to this instance
	CodeAuth        ErrCode = 2 // authentication refused
	CodeMalformed   ErrCode = 3 // the peer sent a frame the relay could not accept
	CodeOverloaded  ErrCode = 4 // the relay refuses the connection for capacity reasons
)

// Decoding errors.
var (
	ErrShort       = errors.New("frame too short")
	ErrVersion     = errors.New("unsupported frame version")
	ErrUnknownType = errors.New("unknown frame type")
	ErrTooLarge    = errors.New("frame field too large")
	ErrBadText     = errors.New("frame text field invalid")
)

// ParseHeader checks version and length of a frame and splits it into type
// and payload. An unknown type is reported with ErrUnknownType together with
// the type, so a receiver may count it instead of closing the connection.
func ParseHeader(b []byte) (Type, []byte, error) {
	if len(b) < HeaderLen {
		return 0, nil, ErrShort
	}
	if b[0] != Version {
		return 0, nil, ErrVersion
	}
	if len(b) > MaxFrame {
		return 0, nil, ErrTooLarge
	}
	t := Type(b[1])
	if t < TypeAuth || t > TypeError {
		return t, nil, ErrUnknownType
	}
	return t, b[HeaderLen:], nil
}

func appendHeader(dst []byte, t Type) []byte { return append(dst, Version, byte(t)) }

// AppendAuth appends an auth frame.
func AppendAuth(dst []byte, peer keys.Public, token string) []byte {
	dst = appendHeader(dst, TypeAuth)
	dst = append(dst, peer[:]...)
	return append(dst, token...)
}

// ParseAuth decodes an auth payload.
func ParseAuth(p []byte) (peer keys.Public, token string, err error) {
	if len(p) < KeyLen+1 {
		return peer, "", ErrShort
	}
	if len(p)-KeyLen > MaxTokenLen {
		return peer, "", ErrTooLarge
	}
	copy(peer[:], p)
	tok := p[KeyLen:]
	if !printable(tok) {
		return peer, "", ErrBadText
	}
	return peer, string(tok), nil
}

// AppendAuthOK appends an auth-ok frame carrying the instance URL.
func AppendAuthOK(dst []byte, instanceURL string) []byte {
	return append(appendHeader(dst, TypeAuthOK), instanceURL...)
}

// ParseAuthOK decodes an auth-ok payload.
func ParseAuthOK(p []byte) (string, error) {
	if len(p) == 0 {
		return "", ErrShort
	}
	if len(p) > MaxURLLen {
		return "", ErrTooLarge
	}
	if !printable(p) {
		return "", ErrBadText
	}
	return string(p), nil
}

// AppendTransport appends a transport frame. The caller bounds len(pkt) by
// MaxPacket.
func AppendTransport(dst []byte, peer keys.Public, pkt []byte) []byte {
	dst = appendHeader(dst, TypeTransport)
	dst = append(dst, peer[:]...)
	return append(dst, pkt...)
}

// ParseTransport decodes a transport payload; pkt aliases p.
func ParseTransport(p []byte) (peer keys.Public, pkt []byte, err error) {
	if len(p) < KeyLen {
		return peer, nil, ErrShort
	}
	if len(p)-KeyLen > MaxPacket {
		return peer, nil, ErrTooLarge
	}
	copy(peer[:], p)
	return peer, p[KeyLen:], nil
}

// AppendClose appends a close frame with a reason (truncated to MaxTextLen).
func AppendClose(dst []byte, reason string) []byte {
	return append(appendHeader(dst, TypeClose), clip(reason)...)
}

// ParseClose decodes a close payload.
func ParseClose(p []byte) (string, error) {
	if len(p) > MaxTextLen {
		return "", ErrTooLarge
	}
	return string(p), nil
}

// AppendPing appends a ping (or, with TypePong, a pong) frame.
func AppendPing(dst []byte, t Type, data []byte) []byte {
	if len(data) > MaxPingLen {
		data = data[:MaxPingLen]
	}
	return append(appendHeader(dst, t), data...)
}

// ParsePing decodes a ping or pong payload.
func ParsePing(p []byte) ([]byte, error) {
	if len(p) > MaxPingLen {
		return nil, ErrTooLarge
	}
	return p, nil
}

// AppendError appends an error frame.
func AppendError(dst []byte, code ErrCode, peer keys.Public, msg string) []byte {
	dst = appendHeader(dst, TypeError)
	dst = append(dst, byte(code))
	dst = append(dst, peer[:]...)
	return append(dst, clip(msg)...)
}

// ParseError decodes an error payload.
func ParseError(p []byte) (code ErrCode, peer keys.Public, msg string, err error) {
	if len(p) < 1+KeyLen {
		return 0, peer, "", ErrShort
	}
	if len(p)-1-KeyLen > MaxTextLen {
		return 0, peer, "", ErrTooLarge
	}
	copy(peer[:], p[1:])
	return ErrCode(p[0]), peer, string(p[1+KeyLen:]), nil
}

func clip(s string) string {
	if len(s) > MaxTextLen {
		return s[:MaxTextLen]
	}
	return s
}

// printable reports whether b is non-control ASCII (tokens and URLs).
func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}
