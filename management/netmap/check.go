package netmap

import (
	"slices"

	"petrel/management/model"
)

// Verdict answers whether traffic is allowed and by which rule.
type Verdict struct {
	Allowed  bool
	PolicyID string
	RuleID   string
	Reason   string
}

// Check answers the policy question "may srcPeerID open traffic of proto to
// dstPeerID on port?" with the same rule order agents use: DROP rules
// first, then ACCEPT, each by policy ID and rule position; first match wins.
// A rule with protocol "all" matches any proto; a port-restricted TCP/UDP
// rule matches only a port inside its ranges (port 0 never matches one).
// proto "" means all.
func (s *Snapshot) Check(srcPeerID, dstPeerID string, proto model.Protocol, port uint16) Verdict {
	src, dst := s.peers[srcPeerID], s.peers[dstPeerID]
	switch {
	case src == nil:
		return Verdict{Reason: "unknown source peer"}
	case dst == nil:
		return Verdict{Reason: "unknown destination peer"}
	case src == dst:
		return Verdict{Reason: "source and destination are the same peer"}
	}
	if proto == "" {
		proto = model.ProtoAll
	}
	for _, r := range s.rules {
		fwd := intersects(src.groups, r.src) && intersects(dst.groups, r.dst)
		rev := r.bidir && intersects(src.groups, r.dst) && intersects(dst.groups, r.src)
		if !(fwd || rev) || !r.matches(proto, port) {
			continue
		}
		v := Verdict{Allowed: r.accept, PolicyID: r.policyID, RuleID: r.key}
		if r.accept {
			v.Reason = "accepted by rule " + r.key + " of policy " + r.policyID
		} else {
			v.Reason = "dropped by rule " + r.key + " of policy " + r.policyID
		}
		return v
	}
	return Verdict{Reason: "no enabled policy rule matches"}
}

func (r *rule) matches(proto model.Protocol, port uint16) bool {
	if r.proto != model.ProtoAll && r.proto != proto {
		return false
	}
	if len(r.ports) == 0 {
		return true
	}
	return slices.ContainsFunc(r.ports, func(p model.PortRange) bool {
		return port != 0 && port >= p.Start && port <= max(p.End, p.Start)
	})
}
