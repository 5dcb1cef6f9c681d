package grpcapi

import (
	"context"

	"petrel/management"
	"petrel/proto/managementpb"
)

// Logout opens a sealed LogoutRequest, deletes the sending peer and answers
// with a sealed, empty LogoutResponse. Only the holder of a registered
// peer's key can seal the request, so a peer can only log itself out; a
// replayed request is refused like a replayed Login.
func (s *Server) Logout(ctx context.Context, in *managementpb.EncryptedMessage) (*managementpb.EncryptedMessage, error) {
	req := &managementpb.LogoutRequest{}
	peer, err := s.open(in, req)
	if err != nil {
		return nil, err
	}
	// Strangers are answered before their nonce is remembered, as in Login,
	// and without calling Logout: a replayed request must not delete a
	// registration of the same key made since.
	if !s.svc.IsPeerKey(peer) {
		return nil, s.toStatus("logout", peer, management.Errorf(management.KindNotFound, "logout: this key is not a registered peer"))
	}
	if err := s.fresh(ctx, "logout", peer, req.GetSentUnixMs(), req.GetNonce()); err != nil {
		return nil, err
	}
	if err := s.svc.Logout(ctx, peer); err != nil {
		return nil, s.toStatus("logout", peer, err)
	}
	return s.seal(peer, &managementpb.LogoutResponse{})
}
