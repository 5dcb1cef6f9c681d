package firewall

import (
	"encoding/binary"
	"net/netip"
)

// IP protocol numbers.
const (
	ipICMP   = 1
	ipTCP    = 6
	ipUDP    = 17
	ipICMPv6 = 58
)

// class is how rules see a packet's protocol.
type class uint8

const (
	clsOther class = iota // no ports: matched only by Proto=All rules without ports
	clsTCP
	clsUDP
	clsICMP
	numClasses
)

// ICMP message kinds that matter to conntrack.
const (
	icmpOther uint8 = iota
	icmpEcho
	icmpEchoReply
	icmpError
)

// TCP flags.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// packet is the decoded view of one IP packet. It holds no reference to
// the packet's bytes except quote, which is only used before the call that
// decoded it returns.
type packet struct {
	src, dst     netip.Addr
	proto        uint8 // IP protocol / IPv6 next header
	cls          class
	sport, dport uint16 // TCP/UDP ports; ICMP echo: both = identifier
	tcpFlags     uint8
	icmpKind     uint8
	fragment     bool   // a non-first IPv4 fragment (no transport header)
	quote        []byte // ICMP error: the quoted packet
}

// decode parses pkt into p. It reports false for anything malformed or
// truncated; it never panics. quoted relaxes the checks for a packet quoted
// in an ICMP error (truncated after 8 bytes of transport header).
func decode(pkt []byte, p *packet, quoted bool) bool {
	if len(pkt) < 1 {
		return false
	}
	var l4 []byte
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < 20 {
			return false
		}
		ihl := int(pkt[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(pkt[2:4]))
		if ihl < 20 || len(pkt) < ihl {
			return false
		}
		if !quoted {
			if total < ihl || total > len(pkt) {
				return false
			}
			pkt = pkt[:total]
		}
		p.src = netip.AddrFrom4([4]byte(pkt[12:16]))
		p.dst = netip.AddrFrom4([4]byte(pkt[16:20]))
		p.proto = pkt[9]
		fragOff := binary.BigEndian.Uint16(pkt[6:8]) & 0x1fff
		if fragOff != 0 {
			p.fragment = true
			p.cls = clsOther
			return true
		}
		l4 = pkt[ihl:]
	case 6:
		if len(pkt) < 40 {
			return false
		}
		if !quoted {
			total := 40 + int(binary.BigEndian.Uint16(pkt[4:6]))
			if total > len(pkt) {
				return false
			}
			pkt = pkt[:total]
		}
		p.src = netip.AddrFrom16([16]byte(pkt[8:24]))
		p.dst = netip.AddrFrom16([16]byte(pkt[24:40]))
		p.proto = pkt[6]
		l4 = pkt[40:]
	default:
		return false
	}
	return decodeL4(l4, p, quoted)
}

func decodeL4(l4 []byte, p *packet, quoted bool) bool {
	v6 := p.src.Is6()
	switch {
	case p.proto == ipTCP:
		if len(l4) < 20 && !(quoted && len(l4) >= 8) {
			return false
		}
		p.cls = clsTCP
		p.sport = binary.BigEndian.Uint16(l4[0:2])
		p.dport = binary.BigEndian.Uint16(l4[2:4])
		if len(l4) >= 14 {
			p.tcpFlags = l4[13]
		}
	case p.proto == ipUDP:
		if len(l4) < 8 {
			return false
		}
		p.cls = clsUDP
		p.sport = binary.BigEndian.Uint16(l4[0:2])
		p.dport = binary.BigEndian.Uint16(l4[2:4])
	case p.proto == ipICMP && !v6, p.proto == ipICMPv6 && v6:
		if len(l4) < 8 {
			return false
		}
		p.cls = clsICMP
		p.icmpKind = icmpKind(l4[0], v6)
		switch p.icmpKind {
		case icmpEcho, icmpEchoReply:
			p.dport = binary.BigEndian.Uint16(l4[4:6])
			p.sport = p.dport // symmetric, so both directions share a conntrack key
		case icmpError:
			if !quoted {
				p.quote = l4[8:]
			}
		}
	default:
		p.cls = clsOther
	}
	return true
}

func icmpKind(typ uint8, v6 bool) uint8 {
	if v6 {
		switch typ {
		case 128:
			return icmpEcho
		case 129:
			return icmpEchoReply
		case 1, 2, 3, 4: // unreachable, too big, time exceeded, parameter problem
			return icmpError
		}
		return icmpOther
	}
	switch typ {
	case 8:
		return icmpEcho
	case 0:
		return icmpEchoReply
	case 3, 11, 12: // unreachable, time exceeded, parameter problem
		return icmpError
	}
	return icmpOther
}
