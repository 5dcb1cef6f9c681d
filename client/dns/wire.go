package dns

import (
	"encoding/binary"

	mdns "github.com/miekg/dns"
)

// The fast path's view of a query datagram (answers.go). It reads the
// header and the question straight from the bytes, and accepts only the
// plainest shape, for which miekg's unpack gives exactly the fields read
// here; anything else takes the full path (unpack, chain, pack):
//
//   - header: QR 0, opcode QUERY, AA, TC, RA, Z and RCODE clear (RD, AD and
//     CD may be set); one question, no answer or authority record, at
//     most one additional record, which must be an OPT;
//   - question: a name (not the root) of labels of letters, digits, '-'
//     and '_', no compression pointer, at most 255 bytes on the wire;
//     class IN; any type but 0, OPT, TKEY, TSIG and the meta types
//     IXFR, AXFR, MAILB and MAILA;
//   - OPT: root owner, extended RCODE 0, version 0, no flag but DO, and
//     no option but well-formed COOKIEs and PADDINGs (miekg unpacks any
//     bytes as those; the answer echoes no option);
//   - nothing after the last record.

// Query header bits the fast path reads (byte 2 and byte 3 of the header).
const (
	wireRD = 0x01 // byte 2: recursion desired
	wireCD = 0x10 // byte 3: checking disabled
	wireAD = 0x20 // byte 3: authentic data
)

// Keys of the answer table end with one byte of EDNS state.
const (
	keyNoEDNS = 0
	keyEDNS   = 1
	keyEDNSDO = 2
)

// wireQuery is a query parseWireQuery accepted.
type wireQuery struct {
	nameEnd int    // the question name is pkt[12:nameEnd]
	letters bool   // the name has a letter (its case can vary)
	key     []byte // lower-cased name, type and EDNS state: the answer table's key
}

// parseWireQuery checks pkt against the shape above and fills q, its key
// built in q.key's backing array (which must hold 255+3 bytes to avoid an
// allocation). It reports false for anything else.
func parseWireQuery(pkt []byte, q *wireQuery) bool {
	if len(pkt) < 12+2+4 {
		return false
	}
	if pkt[2]&^wireRD != 0 || pkt[3]&^(wireAD|wireCD) != 0 {
		return false
	}
	if qd, an, ns, ar := be16(pkt[4:]), be16(pkt[6:]), be16(pkt[8:]), be16(pkt[10:]); qd != 1 || an != 0 || ns != 0 || ar > 1 {
		return false
	}
	key := q.key[:0]
	q.letters = false
	off := 12
	for {
		if off >= len(pkt) {
			return false
		}
		l := int(pkt[off])
		if l == 0 {
			break
		}
		// l > 63: a compression pointer or a reserved label type.
		if l > 63 || off+1+l > len(pkt) || off+1+l-12 >= 255 {
			return false
		}
		key = append(key, byte(l))
		for _, c := range pkt[off+1 : off+1+l] {
			switch {
			case c >= 'a' && c <= 'z':
				q.letters = true
			case c >= 'A' && c <= 'Z':
				q.letters = true
				c += 'a' - 'A'
			case c >= '0' && c <= '9', c == '-', c == '_':
			default:
				return false
			}
			key = append(key, c)
		}
		off += 1 + l
	}
	if off == 12 {
		return false // the root
	}
	off++ // the root label
	q.nameEnd = off
	key = append(key, 0)
	if off+4 > len(pkt) {
		return false
	}
	qtype, qclass := be16(pkt[off:]), be16(pkt[off+2:])
	if qclass != mdns.ClassINET || !plainType(qtype) {
		return false
	}
	key = append(key, pkt[off], pkt[off+1])
	off += 4
	edns := byte(keyNoEDNS)
	if be16(pkt[10:]) == 1 {
		var ok bool
		if edns, ok = parseWireOPT(pkt[off:]); !ok {
			return false
		}
	} else if off != len(pkt) {
		return false
	}
	q.key = append(key, edns)
	return true
}

// parseWireOPT checks that b is exactly one plain OPT record (see above)
// and returns its EDNS key byte.
func parseWireOPT(b []byte) (byte, bool) {
	// owner(1) type(2) class=UDP size(2) ext-rcode(1) version(1) flags(2) rdlen(2)
	if len(b) < 11 || b[0] != 0 || be16(b[1:]) != mdns.TypeOPT || b[5] != 0 || b[6] != 0 {
		return 0, false
	}
	flags := be16(b[7:])
	if flags&^0x8000 != 0 {
		return 0, false
	}
	opts := b[11:]
	if int(be16(b[9:])) != len(opts) {
		return 0, false
	}
	for len(opts) > 0 {
		if len(opts) < 4 {
			return 0, false
		}
		code, l := be16(opts), int(be16(opts[2:]))
		if (code != mdns.EDNS0COOKIE && code != mdns.EDNS0PADDING) || 4+l > len(opts) {
			return 0, false
		}
		opts = opts[4+l:]
	}
	if flags != 0 {
		return keyEDNSDO, true
	}
	return keyEDNS, true
}

// plainType reports whether a question of type t may take the fast path.
func plainType(t uint16) bool {
	switch t {
	case 0, mdns.TypeOPT, mdns.TypeTKEY, mdns.TypeTSIG, mdns.TypeIXFR, mdns.TypeAXFR, mdns.TypeMAILB, mdns.TypeMAILA:
		return false
	}
	return true
}

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }

// swapCase swaps the case of every ASCII letter of b in place. Label
// lengths on the wire are at most 63, below 'A', so a wire name can be
// swapped whole.
func swapCase(b []byte) {
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z':
			b[i] = c - ('a' - 'A')
		case c >= 'A' && c <= 'Z':
			b[i] = c + ('a' - 'A')
		}
	}
}
