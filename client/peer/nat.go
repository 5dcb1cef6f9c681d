package peer

import (
	"net"
	"strconv"

	"github.com/pion/ice/v4"
)

// ReasonSymmetricNAT: one side's NAT maps its socket to a different public
// port per destination, so no hole can be punched.
const ReasonSymmetricNAT = "symmetric-nat"

// natObserver detects symmetric NATs from server-reflexive candidates.
// Every agent gathers them from one socket (the shared WireGuard/ICE
// socket) against two STUN ports of the server: an endpoint-independent NAT
// yields one public address for both, a symmetric NAT two different ones.
// It sees the local candidates and the remote's trickled ones, so both
// sides of a pair can tell. Guarded by the Conn's mutex; reset per session.
type natObserver struct {
	local, remote       map[string]bool // distinct mapped ip:port seen
	localSym, remoteSym bool
}

func (n *natObserver) reset() { *n = natObserver{} }

func (n *natObserver) observe(cand ice.Candidate, remote bool) {
	if cand == nil || cand.Type() != ice.CandidateTypeServerReflexive {
		return
	}
	mapped := net.JoinHostPort(cand.Address(), strconv.Itoa(cand.Port()))
	set, sym := &n.local, &n.localSym
	if remote {
		set, sym = &n.remote, &n.remoteSym
	}
	if *set == nil {
		*set = map[string]bool{}
	}
	(*set)[mapped] = true
	if len(*set) > 1 {
		*sym = true
	}
}

// symmetric reports whether either side is behind a symmetric NAT.
func (n *natObserver) symmetric() bool { return n.localSym || n.remoteSym }
