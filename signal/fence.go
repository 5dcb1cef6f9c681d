package signal

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errFenced ends and refuses sessions while the instance is fenced: it
// cannot reach the shared database, so its presence is unknown to the
// other instances and envelopes for its peers would be lost (HA only).
var errFenced = status.Error(codes.Unavailable, "this signal instance cannot reach its database; try another instance")

// SetFenced fences (true) or unfences (false) the server. Fencing ends
// every session with Unavailable, so agents reconnect through the load
// balancer to an instance that can record their presence, and refuses new
// sessions until unfenced. Idempotent.
func (s *Server) SetFenced(on bool) {
	if s.fenced.Swap(on) == on || !on {
		return
	}
	for _, sess := range s.reg.all() {
		sess.kill(errFenced)
	}
}

// all returns every registered session.
func (r *registry) all() []*session {
	var out []*session
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.RLock()
		for _, s := range sh.m {
			out = append(out, s)
		}
		sh.mu.RUnlock()
	}
	return out
}
