package stun

import (
	"encoding/binary"
	"net"
	"slices"

	pstun "github.com/pion/stun/v4"
)

const (
	headerLen   = 20
	magicCookie = 0x2112A442
	// typeBindingRequest, typeBindingSuccess and typeBindingError are the
	// message types (method Binding) on the wire.
	typeBindingRequest = 0x0001
	typeBindingSuccess = 0x0101
	typeBindingError   = 0x0111

	attrMappedAddress     = 0x0001
	attrChangeRequest     = 0x0003
	attrErrorCode         = 0x0009
	attrUnknownAttributes = 0x000A

	// maxUnknown bounds the UNKNOWN-ATTRIBUTES list in a 420 answer.
	maxUnknown = 16

	// reason420 is the ERROR-CODE reason phrase of a 420 answer. Shorter
	// than RFC 5389's suggested "Unknown Attribute" so that a 420 answer to
	// the smallest request that earns one (24 bytes) stays at twice its size.
	// Its length is a multiple of 4, as RFC 3489 requires.
	reason420 = "Unknown attr"
)

// understood lists the comprehension-required attributes (type < 0x8000) a
// Binding request may carry without a 420 answer: each is either ignored
// harmlessly by a server without authentication (credentials, ICE
// attributes, response-only attributes) or, for CHANGE-REQUEST, honoured
// when it asks for no change (see changeRequestOK). Everything else below
// 0x8000 — among them RESPONSE-ADDRESS, RESPONSE-PORT and PADDING, which
// would redirect or inflate the answer — is refused with 420.
var understood = map[uint16]bool{
	attrMappedAddress:     true,
	0x0006:                true, // USERNAME
	0x0008:                true, // MESSAGE-INTEGRITY
	attrErrorCode:         true,
	attrUnknownAttributes: true,
	0x0014:                true, // REALM
	0x0015:                true, // NONCE
	0x001C:                true, // MESSAGE-INTEGRITY-SHA256
	0x001E:                true, // USERHASH
	0x0020:                true, // XOR-MAPPED-ADDRESS
	0x0024:                true, // PRIORITY
	0x0025:                true, // USE-CANDIDATE
}

// isBindingRequest reports whether b has the header of a Binding request
// (RFC 5389 or classic RFC 3489) whose length field matches the datagram.
// It is the cheap check done before rate limiting.
func isBindingRequest(b []byte) bool {
	if len(b) < headerLen || b[0]&0xC0 != 0 {
		return false
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	return binary.BigEndian.Uint16(b[0:2]) == typeBindingRequest && n%4 == 0 && n == len(b)-headerLen
}

// Respond builds the answer to packet b from addr into resp and returns its
// bytes (aliasing resp.Raw), or nil when b is not a well-formed Binding
// request. An RFC 5389 request (magic cookie present) is answered with
// XOR-MAPPED-ADDRESS, a classic RFC 3489 one with MAPPED-ADDRESS; either is
// answered with 420 and UNKNOWN-ATTRIBUTES if it carries comprehension-
// required attributes the server does not understand. FINGERPRINT is added
// only when the request had one. No answer is larger than 2×len(b)+4 bytes
// (docs/security.md).
func Respond(resp *pstun.Message, b []byte, from *net.UDPAddr) []byte {
	if !isBindingRequest(b) {
		return nil
	}
	if binary.BigEndian.Uint32(b[4:8]) != magicCookie {
		return respondClassic(resp, b, from)
	}
	req := pstun.Message{Raw: b}
	if err := req.Decode(); err != nil {
		return nil
	}
	fingerprint := req.Contains(pstun.AttrFingerprint)
	if fingerprint && pstun.Fingerprint.Check(&req) != nil {
		return nil // damaged or not STUN after all
	}
	setters := []pstun.Setter{pstun.NewTransactionIDSetter(req.TransactionID)}
	if unknown := unknownAttributes(req.Attributes); len(unknown) > 0 {
		ua := make(pstun.UnknownAttributes, len(unknown))
		for i, t := range unknown {
			ua[i] = pstun.AttrType(t)
		}
		setters = append(setters, pstun.BindingError,
			pstun.ErrorCodeAttribute{Code: pstun.CodeUnknownAttribute, Reason: []byte(reason420)}, ua)
	} else {
		setters = append(setters, pstun.BindingSuccess, &pstun.XORMappedAddress{IP: from.IP, Port: from.Port})
	}
	if fingerprint {
		setters = append(setters, pstun.Fingerprint)
	}
	resp.Reset()
	if err := resp.Build(setters...); err != nil {
		return nil
	}
	return resp.Raw
}

// unknownAttributes returns the distinct comprehension-required attribute
// types in attrs that the server does not understand (at most maxUnknown).
func unknownAttributes(attrs pstun.Attributes) []uint16 {
	var out []uint16
	for _, a := range attrs {
		out = noteUnknown(out, uint16(a.Type), a.Value)
	}
	return out
}

// noteUnknown adds t to list if it is a comprehension-required attribute
// the server does not understand and not listed yet (up to maxUnknown).
func noteUnknown(list []uint16, t uint16, v []byte) []uint16 {
	if t >= 0x8000 || understood[t] || (t == attrChangeRequest && changeRequestOK(v)) {
		return list
	}
	if slices.Contains(list, t) || len(list) >= maxUnknown {
		return list
	}
	return append(list, t)
}

// changeRequestOK reports whether a CHANGE-REQUEST value asks for nothing to
// change (both flags clear), which a single-address server can honour.
func changeRequestOK(v []byte) bool {
	return len(v) == 4 && binary.BigEndian.Uint32(v)&0x6 == 0
}

// respondClassic answers an RFC 3489 Binding request (no magic cookie: the
// 16 bytes after the length are all transaction ID). pion/stun refuses such
// messages, so the attributes are walked and the answer encoded here.
func respondClassic(resp *pstun.Message, b []byte, from *net.UDPAddr) []byte {
	var unknown []uint16
	for rest := b[headerLen:]; len(rest) > 0; {
		if len(rest) < 4 {
			return nil
		}
		t := binary.BigEndian.Uint16(rest[0:2])
		n := int(binary.BigEndian.Uint16(rest[2:4]))
		padded := (n + 3) &^ 3
		if 4+padded > len(rest) {
			return nil
		}
		unknown = noteUnknown(unknown, t, rest[4:4+n])
		rest = rest[4+padded:]
	}
	out := resp.Raw[:0]
	out = binary.BigEndian.AppendUint16(out, typeBindingSuccess)
	out = append(out, 0, 0) // length, set below
	out = append(out, b[4:headerLen]...)
	if len(unknown) > 0 {
		binary.BigEndian.PutUint16(out[0:2], typeBindingError)
		out = appendAttr(out, attrErrorCode, append([]byte{0, 0, 4, 20}, reason420...))
		// RFC 3489 §11.2.3: an odd count repeats one type to fill 32 bits.
		if len(unknown)%2 == 1 {
			unknown = append(unknown, unknown[0])
		}
		v := make([]byte, 0, 2*len(unknown))
		for _, t := range unknown {
			v = binary.BigEndian.AppendUint16(v, t)
		}
		out = appendAttr(out, attrUnknownAttributes, v)
	} else {
		out = appendAttr(out, attrMappedAddress, mappedAddress(from))
	}
	binary.BigEndian.PutUint16(out[2:4], uint16(len(out)-headerLen))
	resp.Raw = out
	return out
}

// mappedAddress encodes a MAPPED-ADDRESS value (family 1 = IPv4, 2 = IPv6).
func mappedAddress(a *net.UDPAddr) []byte {
	ip, family := a.IP.To4(), byte(1)
	if ip == nil {
		ip, family = a.IP.To16(), 2
	}
	v := []byte{0, family, byte(a.Port >> 8), byte(a.Port)}
	return append(v, ip...)
}

// appendAttr appends one TLV padded to 4 bytes. Values here are at most a
// few dozen bytes, far below the 16-bit length limit.
func appendAttr(out []byte, t uint16, v []byte) []byte {
	out = binary.BigEndian.AppendUint16(out, t)
	out = binary.BigEndian.AppendUint16(out, uint16(len(v)))
	out = append(out, v...)
	for len(out)%4 != 0 {
		out = append(out, 0)
	}
	return out
}
