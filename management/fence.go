package management

// Self-fencing (HA, docs/adr-005-ha-control-plane.md): an instance that
// cannot reach the shared database stops serving agents, so they move to an
// instance that can. The server decides when (it probes the database);
// the service only acts on it.

import "sync/atomic"

// errFenced is what agents hear from a fenced instance: Unavailable, so
// they retry (through the load balancer, another instance).
var errFenced = Errorf(KindUnavailable, "this management instance cannot reach its database; try another instance")

// fence is the service's fenced flag; the zero value is not fenced.
type fence struct{ on atomic.Bool }

// SetFenced fences (true) or unfences (false) the service. Fencing ends
// every Sync stream with Unavailable and refuses Logins and new streams
// until unfenced; unfencing compares every account with the store at once
// (with HA), so the first maps it hands out again are current. Idempotent.
func (s *Service) SetFenced(on bool) {
	if s.fence.on.Swap(on) == on {
		return
	}
	if on {
		s.log.Warn("fenced: the database is unreachable; closing agents' streams so they move to another instance")
		s.hub.closeAll(errFenced)
		return
	}
	s.log.Info("unfenced: the database is reachable again")
	if s.follow != nil {
		s.follow.askResync()
	}
}

// Fenced reports whether the service is fenced.
func (s *Service) Fenced() bool { return s.fence.on.Load() }
