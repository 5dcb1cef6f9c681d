package grpcapi

import (
	"time"

	"google.golang.org/grpc/codes"

	"petrel/proto/managementpb"
)

// Observer hears of the agent-facing calls, for metrics. Its methods are
// called on the gRPC handlers' goroutines, concurrently; they must be
// cheap and must not block.
type Observer interface {
	// Login reports one Login call: op is OpRegister (the key was not a
	// registered peer's when the call arrived), OpLogin (it was) or
	// OpUnknown (the envelope did not open); code is the status the agent
	// got (codes.OK on success).
	Login(op string, code codes.Code, d time.Duration)
	// SyncSent reports one Sync message sent: kind is SyncFull,
	// SyncDelta or SyncConfig, size the sealed body's bytes.
	SyncSent(kind string, size int)
}

// Login operations and Sync message kinds reported to an Observer.
const (
	OpRegister = "register"
	OpLogin    = "login"
	OpUnknown  = "unknown"

	SyncFull   = "full"   // the first message: the whole network map
	SyncDelta  = "delta"  // a change (possibly several coalesced)
	SyncConfig = "config" // server config only (fresh relay token)
)

// SetObserver makes o hear of Login and Sync calls from now on; nil means
// nobody. Safe at any time.
func (s *Server) SetObserver(o Observer) {
	if o == nil {
		s.obs.Store(nil)
		return
	}
	s.obs.Store(&o)
}

func (s *Server) observer() Observer {
	if p := s.obs.Load(); p != nil {
		return *p
	}
	return nopObserver{}
}

type nopObserver struct{}

func (nopObserver) Login(string, codes.Code, time.Duration) {}
func (nopObserver) SyncSent(string, int)                    {}

// syncKind classifies a Sync response for the Observer.
func syncKind(r *managementpb.SyncResponse) string {
	switch {
	case r.GetFull() != nil:
		return SyncFull
	case r.GetDelta() != nil:
		return SyncDelta
	}
	return SyncConfig
}
