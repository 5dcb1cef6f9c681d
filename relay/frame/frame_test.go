package frame

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"petrel/internal/keys"
)

func testKey(b byte) keys.Public {
	var k keys.Public
	for i := range k {
		k[i] = b + byte(i)
	}
	return k
}

func TestRoundTrip(t *testing.T) {
	k := testKey(7)
	tests := []Frame{
		{Type: TypeAuth, Peer: k, Token: "AQID-_tok"},
		{Type: TypeAuthOK, URL: "rel://eu-1.relay.lab.test:8080"},
		{Type: TypeTransport, Peer: k, Data: []byte("wireguard packet")},
		{Type: TypeTransport, Peer: k, Data: []byte{}},
		{Type: TypeTransport, Peer: k, Data: make([]byte, MaxPacket)},
		{Type: TypeClose, Text: "bye"},
		{Type: TypePing, Data: []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{Type: TypePong, Data: []byte{}},
		{Type: TypeError, Code: CodeUnreachable, Peer: k, Text: "peer not connected"},
	}
	for _, f := range tests {
		t.Run(f.Type.String(), func(t *testing.T) {
			b := f.Append(nil)
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if got.Data == nil && f.Data != nil {
				got.Data = []byte{}
			}
			if f.Data == nil && len(got.Data) == 0 {
				got.Data = nil
			}
			if !reflect.DeepEqual(got, f) {
				t.Fatalf("round trip: got %+v want %+v", got, f)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	k := testKey(1)
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"one byte", []byte{Version}, ErrShort},
		{"bad version", []byte{9, byte(TypePing)}, ErrVersion},
		{"unknown type", []byte{Version, 99}, ErrUnknownType},
		{"type zero", []byte{Version, 0}, ErrUnknownType},
		{"oversized", append([]byte{Version, byte(TypeTransport)}, make([]byte, MaxFrame)...), ErrTooLarge},
		{"short transport", append([]byte{Version, byte(TypeTransport)}, k[:31]...), ErrShort},
		{"auth without token", AppendAuth(nil, k, ""), ErrShort},
		{"auth token too long", AppendAuth(nil, k, strings.Repeat("a", MaxTokenLen+1)), ErrTooLarge},
		{"auth token control char", AppendAuth(nil, k, "a\nb"), ErrBadText},
		{"auth-ok empty", []byte{Version, byte(TypeAuthOK)}, ErrShort},
		{"auth-ok too long", AppendAuthOK(nil, strings.Repeat("u", MaxURLLen+1)), ErrTooLarge},
		{"ping too long", append([]byte{Version, byte(TypePing)}, make([]byte, MaxPingLen+1)...), ErrTooLarge},
		{"close too long", append([]byte{Version, byte(TypeClose)}, make([]byte, MaxTextLen+1)...), ErrTooLarge},
		{"short error", []byte{Version, byte(TypeError), 1}, ErrShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v want %v", err, tt.want)
			}
		})
	}
}

func TestTransportRewriteInPlace(t *testing.T) {
	// The relay swaps destination for source without copying: the key sits
	// at the same offset in both directions.
	dst, src := testKey(1), testKey(100)
	b := AppendTransport(nil, dst, []byte("pkt"))
	copy(b[HeaderLen:TransportLen], src[:])
	f, err := Decode(b)
	if err != nil || f.Peer != src || !bytes.Equal(f.Data, []byte("pkt")) {
		t.Fatalf("rewrite: %+v %v", f, err)
	}
}

func FuzzDecode(f *testing.F) {
	k := testKey(3)
	f.Add(AppendAuth(nil, k, "tok"))
	f.Add(AppendAuthOK(nil, "rel://a:1"))
	f.Add(AppendTransport(nil, k, []byte("x")))
	f.Add(AppendClose(nil, "r"))
	f.Add(AppendPing(nil, TypePing, []byte("12345678")))
	f.Add(AppendError(nil, CodeUnreachable, k, "m"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := Decode(b)
		if err != nil {
			return
		}
		// Anything accepted must re-encode to the same bytes.
		if out := fr.Append(nil); !bytes.Equal(out, b) {
			t.Fatalf("re-encode mismatch:\n in %x\nout %x", b, out)
		}
	})
}

func BenchmarkAppendTransport(b *testing.B) {
	k := testKey(5)
	pkt := make([]byte, 1280)
	buf := make([]byte, 0, MaxFrame)
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendTransport(buf[:0], k, pkt)
	}
}

func BenchmarkParseTransport(b *testing.B) {
	k := testKey(5)
	fr := AppendTransport(nil, k, make([]byte, 1280))
	b.SetBytes(1280)
	b.ReportAllocs()
	for b.Loop() {
		t, p, err := ParseHeader(fr)
		if err != nil || t != TypeTransport {
			b.Fatal(err)
		}
		if _, _, err := ParseTransport(p); err != nil {
			b.Fatal(err)
		}
	}
}
