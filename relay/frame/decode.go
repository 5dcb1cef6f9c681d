package frame

import "petrel/internal/keys"

// Frame is a decoded frame of any type, for tests, tools and fuzzing; the
// relayed data path uses ParseHeader and ParseTransport directly.
type Frame struct {
	Type  Type
	Peer  keys.Public // auth, transport, error
	Token string      // auth
	URL   string      // auth-ok
	Data  []byte      // transport packet, ping/pong data (aliases the input)
	Code  ErrCode     // error
	Text  string      // close reason, error message
}

// Decode parses a whole frame.
func Decode(b []byte) (Frame, error) {
	t, p, err := ParseHeader(b)
	f := Frame{Type: t}
	if err != nil {
		return f, err
	}
	switch t {
	case TypeAuth:
		f.Peer, f.Token, err = ParseAuth(p)
	case TypeAuthOK:
		f.URL, err = ParseAuthOK(p)
	case TypeTransport:
		f.Peer, f.Data, err = ParseTransport(p)
	case TypeClose:
		f.Text, err = ParseClose(p)
	case TypePing, TypePong:
		f.Data, err = ParsePing(p)
	case TypeError:
		f.Code, f.Peer, f.Text, err = ParseError(p)
	}
	return f, err
}

// Append encodes f and appends it to dst.
func (f Frame) Append(dst []byte) []byte {
	switch f.Type {
	case TypeAuth:
		return AppendAuth(dst, f.Peer, f.Token)
	case TypeAuthOK:
		return AppendAuthOK(dst, f.URL)
	case TypeTransport:
		return AppendTransport(dst, f.Peer, f.Data)
	case TypeClose:
		return AppendClose(dst, f.Text)
	case TypePing, TypePong:
		return AppendPing(dst, f.Type, f.Data)
	case TypeError:
		return AppendError(dst, f.Code, f.Peer, f.Text)
	}
	return appendHeader(dst, f.Type)
}
