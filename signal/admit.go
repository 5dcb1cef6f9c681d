package signal

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"petrel/internal/grpcsource"
)

// sources counts the open streams (registering or registered) per source
// address. Entries exist only while a stream is open, so the map is bounded
// by the number of streams.
type sources struct {
	mu sync.Mutex
	n  map[netip.Addr]int
}

// acquire counts one more stream from src unless max > 0 are open already.
func (s *sources) acquire(src netip.Addr, max int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if max > 0 && s.n[src] >= max {
		return false
	}
	s.n[src]++
	return true
}

func (s *sources) release(src netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[src] <= 1 {
		delete(s.n, src)
		return
	}
	s.n[src]--
}

// sourceOf is the remote IP of the call (the zero Addr when the
// transport has none).
func sourceOf(ctx context.Context) netip.Addr { return grpcsource.Addr(ctx) }

// admit applies the per-source open rate, the per-source stream cap and
// the cap on registrations in progress to a new stream from src. On
// success the caller must call leave(src) when the stream ends and
// registered() once registration is over (either way).
func (s *Server) admit(src netip.Addr) (registered func(), err error) {
	if ok, retry := s.opens.Allow(src); !ok {
		s.ctr.opensLimited.Add(1)
		return nil, retryLater(fmt.Sprintf("too many signal session opens from %s", src), retry)
	}
	if !s.srcs.acquire(src, s.cfg.MaxSessionsPerSource) {
		s.ctr.sourceCapped.Add(1)
		return nil, status.Errorf(codes.ResourceExhausted, "too many signal sessions from %s (max %d)", src, s.cfg.MaxSessionsPerSource)
	}
	if n := s.pending.Add(1); s.cfg.MaxPending > 0 && n > int64(s.cfg.MaxPending) {
		s.pending.Add(-1)
		s.srcs.release(src)
		s.ctr.pendingCapped.Add(1)
		return nil, retryLater("too many signal registrations in progress", time.Second)
	}
	var once sync.Once
	return func() { once.Do(func() { s.pending.Add(-1) }) }, nil
}

func (s *Server) leave(src netip.Addr) { s.srcs.release(src) }

// retryLater is a ResourceExhausted status carrying a RetryInfo detail
// (the standard gRPC retry hint); the delay is also in the message for
// humans.
func retryLater(msg string, after time.Duration) error {
	if r := after % time.Millisecond; r != 0 || after <= 0 { // round up
		after += time.Millisecond - r
	}
	st := status.New(codes.ResourceExhausted, fmt.Sprintf("%s; retry in %v", msg, after))
	if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(after)}); err == nil {
		st = d
	}
	return st.Err()
}
