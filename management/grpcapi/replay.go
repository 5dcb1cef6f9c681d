package grpcapi

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"petrel/internal/grpcsource"
	"petrel/internal/keys"
	"petrel/internal/replay"
)

// ReplayWindow is how far a request's timestamp may be from the server's
// clock. Agents stamp requests on the server's clock (the offset comes
// with ServerKey), so the window only has to cover a round trip and the
// drift between two ServerKey calls.
const ReplayWindow = 2 * time.Minute

// maxNonces bounds the nonces remembered (about 100 bytes each): far above
// what the login limits let through within a window.
const maxNonces = 1 << 20

// fresh refuses a Login or Sync whose sealed body was seen before or is
// stamped outside the window: a captured message replayed by someone on
// the path changes nothing.
func (s *Server) fresh(ctx context.Context, op string, pk keys.Public, sentMs int64, nonce []byte) error {
	var ts time.Time
	if sentMs > 0 {
		ts = time.UnixMilli(sentMs)
	}
	err := s.replay.Check(pk, ts, nonce)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, replay.ErrFull):
		return status.Error(codes.Unavailable, op+": "+err.Error())
	}
	s.log.Info(op+" refused", "peer", pk.Short(), "source", grpcsource.Addr(ctx), "reason", err)
	if errors.Is(err, replay.ErrNoNonce) {
		// An agent from before replay protection: it must be upgraded
		// (agents first, then the server; older servers ignore the stamp).
		return status.Error(codes.FailedPrecondition, op+": "+err.Error()+"; upgrade the agent")
	}
	// Aborted, not a refusal: the honest agent whose message was replayed
	// ahead of it (or whose clock jumped) retries with a fresh stamp.
	return status.Error(codes.Aborted, op+": "+err.Error())
}
