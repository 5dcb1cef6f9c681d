package stun

import (
	"bytes"
	"encoding/binary"
	"net"
	"slices"
	"testing"

	pstun "github.com/pion/stun/v4"
)

var (
	from4 = &net.UDPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 40000}
	from6 = &net.UDPAddr{IP: net.ParseIP("2001:db8::7"), Port: 40001}
)

// rawAttr is an attribute added verbatim (pion has no setter for most).
type rawAttr struct {
	t pstun.AttrType
	v []byte
}

func (a rawAttr) AddTo(m *pstun.Message) error { m.Add(a.t, a.v); return nil }

func changeRequest(flags uint32) rawAttr {
	return rawAttr{pstun.AttrChangeRequest, binary.BigEndian.AppendUint32(nil, flags)}
}

func TestUnknownComprehensionRequiredGets420(t *testing.T) {
	for _, c := range []struct {
		name    string
		attrs   []pstun.Setter
		unknown []pstun.AttrType // nil: success expected
	}{
		{"plain", nil, nil},
		{"unknown optional ignored", []pstun.Setter{rawAttr{0x8123, []byte{1}}}, nil},
		{"ICE and credentials ignored", []pstun.Setter{
			pstun.NewUsername("a:b"), rawAttr{pstun.AttrPriority, make([]byte, 4)}, rawAttr{pstun.AttrUseCandidate, nil},
		}, nil},
		{"CHANGE-REQUEST without flags honoured", []pstun.Setter{changeRequest(0)}, nil},
		{"CHANGE-REQUEST change IP", []pstun.Setter{changeRequest(4)}, []pstun.AttrType{pstun.AttrChangeRequest}},
		{"CHANGE-REQUEST change port", []pstun.Setter{changeRequest(2)}, []pstun.AttrType{pstun.AttrChangeRequest}},
		{"RESPONSE-PORT", []pstun.Setter{rawAttr{pstun.AttrResponsePort, []byte{0x30, 0x39, 0, 0}}}, []pstun.AttrType{pstun.AttrResponsePort}},
		{"PADDING", []pstun.Setter{rawAttr{pstun.AttrPadding, make([]byte, 512)}}, []pstun.AttrType{pstun.AttrPadding}},
		{"several, deduplicated, optional left out", []pstun.Setter{
			rawAttr{0x7fff, []byte{1}}, rawAttr{0x8123, nil}, rawAttr{0x0042, nil}, rawAttr{0x7fff, []byte{2}},
		}, []pstun.AttrType{0x7fff, 0x0042}},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := pstun.MustBuild(append([]pstun.Setter{pstun.TransactionID, pstun.BindingRequest}, c.attrs...)...)
			var resp pstun.Message
			out := Respond(&resp, req.Raw, from4)
			if out == nil {
				t.Fatal("no answer")
			}
			m := pstun.Message{Raw: slices.Clone(out)}
			if err := m.Decode(); err != nil {
				t.Fatal(err)
			}
			if m.TransactionID != req.TransactionID {
				t.Fatal("transaction ID not echoed")
			}
			if c.unknown == nil {
				var xa pstun.XORMappedAddress
				if m.Type != pstun.BindingSuccess || xa.GetFrom(&m) != nil || !xa.IP.Equal(from4.IP) || xa.Port != from4.Port {
					t.Fatalf("got %v (%v), want success mapping %v", m.Type, xa, from4)
				}
				return
			}
			if m.Type != pstun.BindingError {
				t.Fatalf("got %v, want a Binding error response", m.Type)
			}
			var ec pstun.ErrorCodeAttribute
			if err := ec.GetFrom(&m); err != nil || ec.Code != pstun.CodeUnknownAttribute {
				t.Fatalf("ERROR-CODE %v (%v), want 420", ec.Code, err)
			}
			var ua pstun.UnknownAttributes
			if err := ua.GetFrom(&m); err != nil {
				t.Fatalf("UNKNOWN-ATTRIBUTES: %v", err)
			}
			if !slices.Equal(ua, c.unknown) {
				t.Fatalf("UNKNOWN-ATTRIBUTES %v, want %v", ua, c.unknown)
			}
			if m.Contains(pstun.AttrXORMappedAddress) {
				t.Fatal("a 420 answer carries a mapped address")
			}
		})
	}
}

// classicRequest builds an RFC 3489 Binding request: no magic cookie, a
// 128-bit transaction ID, attributes verbatim.
func classicRequest(attrs ...rawAttr) []byte {
	b := []byte{0, 1, 0, 0}
	b = append(b, bytes.Repeat([]byte{0xab}, 16)...)
	for _, a := range attrs {
		b = appendAttr(b, uint16(a.t), a.v)
	}
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)-headerLen))
	return b
}

// attrs walks the attributes of a classic message.
func attrs(t *testing.T, b []byte) map[uint16][]byte {
	t.Helper()
	out := map[uint16][]byte{}
	for rest := b[headerLen:]; len(rest) > 0; {
		if len(rest) < 4 {
			t.Fatalf("truncated attribute in %x", b)
		}
		n := int(binary.BigEndian.Uint16(rest[2:4]))
		out[binary.BigEndian.Uint16(rest[0:2])] = rest[4 : 4+n]
		rest = rest[4+(n+3)&^3:]
	}
	return out
}

func TestClassicRFC3489Binding(t *testing.T) {
	for _, c := range []struct {
		name string
		from *net.UDPAddr
		want []byte
	}{
		{"IPv4", from4, []byte{0, 1, 0x9c, 0x40, 192, 0, 2, 7}},
		{"IPv6", from6, append([]byte{0, 2, 0x9c, 0x41}, from6.IP.To16()...)},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, req := range [][]byte{classicRequest(), classicRequest(changeRequest(0))} {
				var resp pstun.Message
				out := Respond(&resp, req, c.from)
				if out == nil {
					t.Fatal("classic request not answered")
				}
				if binary.BigEndian.Uint16(out[0:2]) != typeBindingSuccess || !bytes.Equal(out[4:20], req[4:20]) {
					t.Fatalf("answer header %x, want Binding success echoing %x", out[:20], req[4:20])
				}
				if int(binary.BigEndian.Uint16(out[2:4])) != len(out)-headerLen {
					t.Fatal("bad length field")
				}
				if got := attrs(t, out)[attrMappedAddress]; !bytes.Equal(got, c.want) {
					t.Fatalf("MAPPED-ADDRESS %x, want %x", got, c.want)
				}
			}
		})
	}
	t.Run("RESPONSE-ADDRESS refused", func(t *testing.T) {
		// RESPONSE-ADDRESS (0x0002) would redirect the answer to a third
		// party; it is never honoured.
		req := classicRequest(rawAttr{0x0002, []byte{0, 1, 0, 53, 198, 51, 100, 1}})
		var resp pstun.Message
		out := Respond(&resp, req, from4)
		if out == nil || binary.BigEndian.Uint16(out[0:2]) != typeBindingError {
			t.Fatalf("got %x, want a Binding error", out)
		}
		a := attrs(t, out)
		if ec := a[attrErrorCode]; len(ec) < 4 || ec[2] != 4 || ec[3] != 20 {
			t.Fatalf("ERROR-CODE %x, want 420", ec)
		}
		// RFC 3489: an odd count is padded by repeating a type.
		if got := a[attrUnknownAttributes]; !bytes.Equal(got, []byte{0, 2, 0, 2}) {
			t.Fatalf("UNKNOWN-ATTRIBUTES %x, want 0002 0002", got)
		}
	})
	t.Run("malformed dropped", func(t *testing.T) {
		bad := classicRequest(rawAttr{0x8001, make([]byte, 8)})
		binary.BigEndian.PutUint16(bad[22:24], 200) // attribute overruns the message
		for _, b := range [][]byte{bad, classicRequest()[:19]} {
			var resp pstun.Message
			if out := Respond(&resp, b, from4); out != nil {
				t.Fatalf("answered malformed %x", b)
			}
		}
	})
}

// maxAnswer is the bound on an answer to an n-byte request (docs/security.md).
func maxAnswer(n int) int { return 2*n + 4 }

// TestAmplificationBound answers the smallest request of each kind and
// checks the answer is at most 2×request+4 bytes; the worst case is an
// IPv6 source sending a bare 20-byte request (44 bytes back, factor 2.2).
func TestAmplificationBound(t *testing.T) {
	unknown := rawAttr{0x0042, nil}
	cases := []struct {
		name string
		req  []byte
		from *net.UDPAddr
	}{
		{"bare v4", pstun.MustBuild(pstun.TransactionID, pstun.BindingRequest).Raw, from4},
		{"bare v6", pstun.MustBuild(pstun.TransactionID, pstun.BindingRequest).Raw, from6},
		{"fingerprint v6", pstun.MustBuild(pstun.TransactionID, pstun.BindingRequest, pstun.Fingerprint).Raw, from6},
		{"420 one unknown", pstun.MustBuild(pstun.TransactionID, pstun.BindingRequest, unknown).Raw, from6},
		{"420 one unknown + fingerprint", pstun.MustBuild(pstun.TransactionID, pstun.BindingRequest, unknown, pstun.Fingerprint).Raw, from6},
		{"classic v4", classicRequest(), from4},
		{"classic v6", classicRequest(), from6},
		{"classic 420", classicRequest(unknown), from6},
	}
	worst := 0.0
	for _, c := range cases {
		var resp pstun.Message
		out := Respond(&resp, c.req, c.from)
		if out == nil {
			t.Fatalf("%s: no answer", c.name)
		}
		f := float64(len(out)) / float64(len(c.req))
		t.Logf("%-30s request %3d B, answer %3d B, factor %.2f", c.name, len(c.req), len(out), f)
		if len(out) > maxAnswer(len(c.req)) {
			t.Errorf("%s: %d-byte answer to a %d-byte request, bound %d", c.name, len(out), len(c.req), maxAnswer(len(c.req)))
		}
		worst = max(worst, f)
	}
	if worst > 2.2 {
		t.Errorf("worst amplification %.2f, documented 2.2", worst)
	}
}

func TestRespondIgnoresNonBinding(t *testing.T) {
	var resp pstun.Message
	ind := pstun.MustBuild(pstun.TransactionID, pstun.NewType(pstun.MethodBinding, pstun.ClassIndication))
	succ := pstun.MustBuild(pstun.TransactionID, pstun.BindingSuccess)
	badFP := pstun.MustBuild(pstun.TransactionID, pstun.BindingRequest, pstun.Fingerprint)
	badFP.Raw[len(badFP.Raw)-1] ^= 1
	for name, b := range map[string][]byte{
		"indication": ind.Raw, "success": succ.Raw, "empty": nil, "truncated": ind.Raw[:19],
		"bad fingerprint": badFP.Raw, "classic success": append([]byte{1, 1, 0, 0}, make([]byte, 16)...),
	} {
		if out := Respond(&resp, b, from4); out != nil {
			t.Errorf("%s answered", name)
		}
	}
}

func FuzzRespond(f *testing.F) {
	f.Add(pstun.MustBuild(pstun.TransactionID, pstun.BindingRequest).Raw)
	f.Add(pstun.MustBuild(pstun.TransactionID, pstun.BindingRequest, pstun.NewSoftware("x"), pstun.Fingerprint).Raw)
	f.Add(pstun.MustBuild(pstun.TransactionID, pstun.BindingRequest, rawAttr{0x0042, nil}).Raw)
	f.Add(classicRequest())
	f.Add(classicRequest(changeRequest(6), rawAttr{0x0002, make([]byte, 8)}))
	f.Add([]byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, from := range []*net.UDPAddr{from4, from6} {
			var resp pstun.Message
			out := Respond(&resp, b, from)
			if out == nil {
				continue
			}
			if len(out) > maxAnswer(len(b)) {
				t.Fatalf("%d-byte answer to %d bytes", len(out), len(b))
			}
			if !bytes.Equal(out[4:20], b[4:20]) {
				t.Fatal("transaction ID (and cookie) not echoed")
			}
			typ := binary.BigEndian.Uint16(out[0:2])
			if typ != typeBindingSuccess && typ != typeBindingError {
				t.Fatalf("answer type %#x", typ)
			}
			if pstun.IsMessage(out) {
				m := pstun.Message{Raw: slices.Clone(out)}
				if err := m.Decode(); err != nil {
					t.Fatalf("answer does not decode: %v", err)
				}
			}
		}
	})
}
